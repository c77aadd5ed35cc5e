"""Records the cache layout huggingface_hub itself produces, as the reference for aya's hub cache.

Serves a tiny model repo from a loopback HTTP server that answers like huggingface.co (API listing, HEAD/GET on
resolve URLs, 302 of the LFS file to a "CDN" path with X-Linked-Etag/X-Linked-Size), runs huggingface_hub's
snapshot_download against it into a temporary cache, and writes every path of the repo folder (kind, symlink
target, sha256 of content, ref text) to src/test/resources/hub/hf_hub_layout.json.
The same repo (same bytes, same commit) is defined in aya.hub.HubLayoutCompatibilityTest.

Run: ~/.venvs/ref/bin/python src/test/python/make_hub_layout_fixture.py
     python3 src/test/python/make_hub_layout_fixture.py --serve 8765   (only serve the repo, stdlib only,
     for trying `HF_ENDPOINT=http://127.0.0.1:8765 ./aya download Org/Model`)
"""
import hashlib
import json
import os
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = "Org/Model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
FILES = {
    "config.json": b'{"model_type": "cohere2"}\n',
    "generation_config.json": b'{"do_sample": true, "temperature": 0.3}\n',
    "tokenizer.json": b'{"model": {"type": "BPE"}}\n',
    "tokenizer_config.json": b'{"eos_token": "<EOS_TOKEN>"}\n',
    "special_tokens_map.json": b'{}\n',
    "chat_template.jinja": b"{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}\n",
    "model.safetensors": bytes(range(256)) * 300,
    "README.md": b"# a model\n",
}
LFS = {"model.safetensors"}
WANTED = [f for f in FILES if f != "README.md"]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Hub(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, code, headers, body=b""):
        self.send_response(code)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith(f"/api/models/{REPO}/tree/"):
            tree = []
            for name, data in FILES.items():
                entry = {"type": "file", "path": name, "oid": git_blob_sha1(data), "size": len(data)}
                if name in LFS:
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
                tree.append(entry)
            return self._send(200, {"Content-Type": "application/json"}, json.dumps(tree).encode())
        if path.startswith(f"/api/models/{REPO}"):
            body = json.dumps({"id": REPO, "sha": COMMIT,
                               "siblings": [{"rfilename": f} for f in FILES]}).encode()
            return self._send(200, {"Content-Type": "application/json"}, body)
        if path.startswith("/cdn/"):
            sha = path.rsplit("/", 1)[1]
            for data in FILES.values():
                if hashlib.sha256(data).hexdigest() == sha:
                    return self._send(200, {}, data)
            return self._send(404, {})
        prefix = f"/{REPO}/resolve/"
        if path.startswith(prefix):
            revision, name = path[len(prefix):].split("/", 1)
            data = FILES.get(name)
            if data is None:
                return self._send(404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": COMMIT})
            if name in LFS:
                sha = hashlib.sha256(data).hexdigest()
                return self._send(302, {"X-Repo-Commit": COMMIT, "X-Linked-Etag": f'"{sha}"',
                                        "X-Linked-Size": str(len(data)), "ETag": '"pointer"',
                                        # another host name, so huggingface_hub treats it as a CDN
                                        "Location": f"http://localhost:{self.server.server_port}/cdn/{sha}"})
            return self._send(200, {"X-Repo-Commit": COMMIT, "ETag": f'"{git_blob_sha1(data)}"'}, data)
        self._send(404, {})


def layout(root: Path):
    entries = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                entries.append({"path": rel, "kind": "symlink", "target": os.readlink(p)})
            elif p.is_dir():
                entries.append({"path": rel, "kind": "dir"})
            else:
                data = p.read_bytes()
                entry = {"path": rel, "kind": "file", "sha256": hashlib.sha256(data).hexdigest()}
                if rel.startswith("refs/"):
                    entry["text"] = data.decode()
                entries.append(entry)
    return sorted(entries, key=lambda e: e["path"])


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{server.server_port}"
        os.environ["HF_HUB_DISABLE_XET"] = "1"
        os.environ.pop("HF_TOKEN", None)
        import huggingface_hub
        from huggingface_hub import snapshot_download
        path = snapshot_download(REPO, cache_dir=tmp, allow_patterns=WANTED, token=False)
        repo_folder = Path(tmp) / ("models--" + REPO.replace("/", "--"))
        result = {"huggingface_hub": huggingface_hub.__version__, "repo": REPO, "commit": COMMIT,
                  "snapshot": str(Path(path).relative_to(tmp)), "entries": layout(repo_folder)}
    server.shutdown()
    out = Path(__file__).resolve().parents[1] / "resources" / "hub" / "hf_hub_layout.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        print(f"serving {REPO} at http://127.0.0.1:{sys.argv[2]} (Ctrl-C stops)", file=sys.stderr)
        ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Hub).serve_forever()
    else:
        main()
