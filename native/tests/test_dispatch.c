/* aya_init / aya_set_isa: AYA_ISA forces a path, bad names and unsupported ISAs fail with a reason. */
#define _POSIX_C_SOURCE 200809L /* setenv */
#include "test_util.h"

int main(void) {
    CHECK(strcmp(aya_isa_name(), "scalar") == 0, "before aya_init the scalar kernels run, not %s", aya_isa_name());

    unsetenv("AYA_ISA");
    CHECK(aya_init() == AYA_OK, "aya_init failed: %s", aya_last_error());
    const char *best = aya_isa_name();
    CHECK(aya_isa_available(best), "aya_init chose %s, which is not available", best);
    printf("best ISA here: %s\n", best);

    setenv("AYA_ISA", "scalar", 1);
    CHECK(aya_init() == AYA_OK && strcmp(aya_isa_name(), "scalar") == 0, "AYA_ISA=scalar gave %s", aya_isa_name());

    setenv("AYA_ISA", "sse9", 1);
    CHECK(aya_init() == AYA_ERR_UNKNOWN_ISA, "AYA_ISA=sse9 was accepted");
    CHECK(strstr(aya_last_error(), "AYA_ISA=sse9") != NULL && strstr(aya_last_error(), "unknown") != NULL,
          "unhelpful error: %s", aya_last_error());
    CHECK(strcmp(aya_isa_name(), "scalar") == 0, "a failed aya_init changed the ISA to %s", aya_isa_name());

    const char *names[4] = { "avx2", "avx512", "avx512bf16", "neon" };
    for (int i = 0; i < 4; i++) {
        int status = aya_set_isa(names[i]);
        if (aya_isa_available(names[i])) {
            CHECK(status == AYA_OK && strcmp(aya_isa_name(), names[i]) == 0, "aya_set_isa(%s) = %d", names[i], status);
        } else {
            CHECK(status == AYA_ERR_CPU_LACKS || status == AYA_ERR_NOT_BUILT, "aya_set_isa(%s) = %d", names[i], status);
            CHECK(strstr(aya_last_error(), names[i]) != NULL, "error does not name %s: %s", names[i], aya_last_error());
            printf("%s: %s\n", names[i], aya_last_error());
        }
    }
    CHECK(aya_set_isa("auto") == AYA_OK && strcmp(aya_isa_name(), best) == 0, "auto gave %s, want %s", aya_isa_name(), best);
    CHECK(aya_set_isa(NULL) == AYA_OK, "NULL should mean auto");
    return finish("test_dispatch");
}
