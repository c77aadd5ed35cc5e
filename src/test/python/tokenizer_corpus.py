"""Our own multilingual test corpus (written for aya-java) plus hostile edge cases and seeded random strings."""
import random

# One or two sentences per language, written for these tests (not copied from any dataset).
LANGUAGES = {
    "English": "The quick brown fox doesn't jump over 3 lazy dogs; it's 2026 and they're all asleep.",
    "French": "L'été dernier, nous sommes allés à Paris : c'était magnifique, n'est-ce pas ?",
    "German": "Größere Straßenbahnen fahren über die Brücke, während Jürgen 12,50 € bezahlt.",
    "Spanish": "¿Dónde está la biblioteca? ¡Mañana iremos al año nuevo con niños pequeños!",
    "Portuguese": "A informação não está disponível; você já comeu pão de queijo em São Paulo?",
    "Italian": "Perché l'università è chiusa? Però c'è ancora tempo per un caffè.",
    "Dutch": "Het ijsje smaakt heerlijk in de zomer, maar de fiets is gisteren gestolen.",
    "Polish": "Zażółć gęślą jaźń — w Łodzi pada deszcz, a ja piję herbatę.",
    "Czech": "Příliš žluťoučký kůň úpěl ďábelské ódy v pátek 13. března.",
    "Ukrainian": "Привіт, як справи? Сьогодні в Києві їжачок їсть ґрунтові яблука.",
    "Russian": "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Greek": "Η γρήγορη καφέ αλεπού πηδάει πάνω από τον τεμπέλη σκύλο· ΣΟΦΙΑ σοφός.",
    "Turkish": "İstanbul'da yağmur yağıyor; ılık çay içip şarkı söylüyoruz.",
    "Arabic": "مرحبا بالعالم! كيف حالك اليوم؟ الطقس جميل في القاهرة ٢٠٢٦.",
    "Persian": "سلام دوست من، امروز هوا خیلی خوب است و ما به پارک می‌رویم.",
    "Hebrew": "שלום עולם! מה שלומך היום? אני לומד עברית בתל אביב.",
    "Hindi": "नमस्ते दुनिया! आज मौसम बहुत अच्छा है और हम बाज़ार जा रहे हैं।",
    "Bengali": "আমি বাংলায় গান গাই, আমার সোনার বাংলা আমি তোমায় ভালোবাসি।",
    "Urdu": "آج موسم بہت اچھا ہے، ہم شام کو چائے پینے جائیں گے۔",
    "Marathi": "माझे नाव सीता आहे आणि मी पुण्यात राहते.",
    "Tamil": "வணக்கம் உலகம்! நான் தமிழ் மொழியை நேசிக்கிறேன்.",
    "Telugu": "నమస్కారం ప్రపంచం! ఈ రోజు వాతావరణం చాలా బాగుంది.",
    "Gujarati": "કેમ છો? હું અમદાવાદમાં રહું છું અને ગુજરાતી બોલું છું.",
    "Punjabi": "ਸਤ ਸ੍ਰੀ ਅਕਾਲ! ਤੁਸੀਂ ਕਿਵੇਂ ਹੋ? ਮੈਂ ਠੀਕ ਹਾਂ।",
    "Nepali": "नमस्कार! म काठमाडौंमा बस्छु र मलाई हिमाल मन पर्छ।",
    "Thai": "สวัสดีชาวโลก วันนี้อากาศดีมากและเราจะไปตลาดกัน",
    "Vietnamese": "Xin chào thế giới! Hôm nay trời đẹp, chúng tôi đi chợ mua phở.",
    "Indonesian": "Selamat pagi! Saya sedang belajar memasak nasi goreng di Jakarta.",
    "Malay": "Apa khabar? Saya suka makan durian di Kuala Lumpur pada hujung minggu.",
    "Tagalog": "Magandang umaga! Kumain ka na ba ng adobo at kanin ngayong araw?",
    "Chinese": "你好，世界！今天天气很好，我们去公园散步吧。人工智能正在改变生活。",
    "Japanese": "こんにちは世界！今日はいい天気ですね。カタカナとひらがなと漢字を混ぜます。",
    "Korean": "안녕하세요 세계! 오늘 날씨가 정말 좋네요. 한국어를 공부하고 있어요.",
    "Swahili": "Habari ya asubuhi! Ninapenda kusoma vitabu na kunywa chai ya tangawizi.",
    "Amharic": "ሰላም ለዓለም! ዛሬ የአየር ሁኔታው በጣም ጥሩ ነው።",
    "Yoruba": "Ẹ kú àárọ̀! Ṣé dáadáa ni gbogbo ẹbí yín wà?",
    "Hausa": "Sannu da zuwa! Ina son karanta littattafai a ƙarƙashin bishiya.",
    "Zulu": "Sawubona mhlaba! Ngiyathanda ukufunda izincwadi ekuseni.",
    "Igbo": "Ndewo! Kedu ka ị mere taa? Anyị na-aga ahịa echi.",
    "Romanian": "Bună dimineața! Știința și țara noastră sunt frumoase în toamnă.",
    "Hungarian": "Árvíztűrő tükörfúrógép: a magyar nyelv gyönyörű és bonyolult.",
    "Finnish": "Hyvää huomenta! Käyn saunassa ja syön ruisleipää järven rannalla.",
    "Swedish": "Flygande bäckasiner söka hwila på mjuka tuvor, sa Åsa på fjället.",
    "Danish": "Blåbærgrød med fløde er en dejlig dessert om sommeren.",
    "Norwegian": "Vi går på tur i fjellet og spiser brunost på brødskiva.",
    "Catalan": "Bon dia! L'àvia cuina paella a la plaça de Barcelona.",
    "Basque": "Egun on! Gaur euskara ikasten ari naiz Bilbon.",
    "Galician": "Bos días! A choiva en Santiago é fermosa no outono.",
    "Slovak": "Dobré ráno! Ďateľ ťuká do stromu v lese pri Žiline.",
    "Bulgarian": "Добро утро! Днес ще ходим на планина с приятели.",
    "Serbian": "Добар дан! Ђурђевак цвета у мају, а Јелена пева.",
    "Croatian": "Dobar dan! Čaša vode i ćevapi u Zagrebu su odlični.",
    "Lithuanian": "Labas rytas! Ąžuolas auga prie ežero, o čia šalta.",
    "Latvian": "Labrīt! Ķirbji un ābolu pīrāgs ir gardi rudenī.",
    "Estonian": "Tere hommikust! Õunapuu õitseb ja jäätis sulab päikese käes.",
    "Welsh": "Bore da! Rwy'n hoffi darllen llyfrau yng Nghaerdydd.",
    "Irish": "Dia duit! Tá an aimsir go hálainn inniu i mBaile Átha Cliath.",
    "Maltese": "L-għodwa t-tajba! Il-baħar huwa sabiħ ħafna llum.",
    "Khmer": "សួស្តី​ពិភពលោក! ថ្ងៃនេះ​អាកាសធាតុ​ល្អ​ណាស់។",
    "Lao": "ສະບາຍດີ ໂລກ! ມື້ນີ້ອາກາດດີຫຼາຍ.",
    "Burmese": "မင်္ဂလာပါ ကမ္ဘာ! ဒီနေ့ ရာသီဥတု သာယာပါတယ်။",
    "Javanese": "Sugeng enjing! Aku seneng mangan sega pecel ing Solo.",
    "Malagasy": "Manao ahoana! Tiako ny mamaky boky amin'ny maraina.",
    "Shona": "Mhoro nyika! Ndinofarira kuverenga mabhuku mangwanani.",
    "Somali": "Subax wanaagsan! Waxaan jeclahay inaan akhriyo buugaag.",
    "Wolof": "Salaam aleekum! Naka nga def? Maangi fi rekk.",
    "Xhosa": "Molo lizwe! Ndiyathanda ukufunda iincwadi kusasa.",
}

EDGE_CASES = [
    "",
    " ",
    "  ",
    "    leading spaces",
    "trailing spaces    ",
    "a  b   c    d",
    "\t\ttabs\tand\t spaces \t",
    "line one\nline two\n\nline four\n",
    "windows\r\nline\r\nendings\r\n",
    "\r\n\r\n",
    "\n\n\n   \n",
    "mixed \n\t \r\n  whitespace",
    "1 12 123 1234 12345 123456 1234567 12345678 123456789 1234567890",
    "3.14159 2,718 1,000,000 1.000.000 1_000_000 10^6 -42 +7 0x1F 1e-9",
    "Phone: +1 (555) 123-4567, year 2026, 99.9% of 1/3",
    "٠١٢٣٤٥٦٧٨٩ and ०१२३४५६७८९ and ０１２３ and ²³¹ ½ ⅓ Ⅻ",
    "abc123def 123abc abc123 a1b2c3 x_123 123_456",
    "👋🏽 hello 👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👩🏿‍💻 coder ❤️ 🇫🇷🇯🇵",
    "emoji😀😃😄glued😁together🤣",
    "e\u0301 vs é, n\u0303 vs ñ, a\u0308\u0304 stacked marks, Z\u0351\u0352\u0353algo",
    "\u200fRTL mark\u200e LTR mark \u202aembedding\u202c \u2067isolate\u2069",
    "no\u00a0break\u00a0space, thin\u2009space, ideographic\u3000space, em\u2003space, nnbsp\u202fhere",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom",
    "it's IT'S It'S you're YOU'RE we've I'm I'M he'll she'd they'LL",
    "it’s don’t we’re l’homme ‘quoted’ “double” «guillemets» „German“",
    "'s 't 're 've 'm 'll 'd ' s '' '''",
    "<BOS_TOKEN>literal bos<EOS_TOKEN>",
    "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>hi<|END_OF_TURN_TOKEN|>",
    "<|END_OF_TURN_TOKEN <|END_OF_TURN_TOKEN|> |END_OF_TURN_TOKEN|> <END_OF_TURN_TOKEN>",
    "a<BOS_TOKEN>b <BOS_TOKEN> c<BOS_TOKEN><BOS_TOKEN>",
    "<|endoftext|> <s> </s> <unk> <pad> <mask> [CLS] [SEP]",
    "https://example.com/path?query=1&x=y#frag and mailto:someone@example.org",
    "def f(x):\n    return x**2  # square\n\nif __name__ == '__main__':\n\tprint(f(3))",
    "for (int i = 0; i < n; i++) { sum += a[i]; } // C-style",
    "{\"key\": [1, 2, 3], \"nested\": {\"a\": null, \"b\": true}}",
    "<html><body class=\"x\">Hello &amp; welcome</body></html>",
    "!!!??? ... --- ___ *** ### $$$ %%% ^^^ ~~~ ||| \\\\ //",
    "CamelCaseWords and snake_case_words and SCREAMING_CASE and kebab-case-words",
    "ALLCAPS Title Case lowercase mIxEd ǅungla ǈj Ǌ",
    "Straße STRASSE ß ẞ İstanbul ıi ǰ ﬁ ﬂ ﬀ",
    "Ａｂｃ　ｆｕｌｌｗｉｄｔｈ　１２３ and ｶﾀｶﾅ halfwidth",
    "𝐁𝐨𝐥𝐝 𝑖𝑡𝑎𝑙𝑖𝑐 𝔉𝔯𝔞𝔨𝔱𝔲𝔯 𝟙𝟚𝟛 math letters",
    "汉字漢字かなカナ한글 mixed with English and 123",
    "\u0000null\u0001control\u007fdel\u0085nel\u2028ls\u2029ps",
    "Ω≈ç√∫˜µ≤≥÷ ∑∏∆ ∞ ±×",
    "  \u2581already metaspace\u2581 chars ▁▁",
    "Ġ Ċ ĉ byte-level lookalikes ĠĠ",
    "a" * 300,
    "word " * 60,
    "9" * 50,
    " " * 40 + "x",
    "\n" * 10 + "y" + "\t" * 7,
]


def random_strings(seed: int, count: int) -> list[str]:
    """Random mixes of scripts, digits, spaces, punctuation and special-token fragments (deterministic)."""
    rng = random.Random(seed)
    pools = [
        "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", "0123456789",
        " ", "  ", "\t", "\n", "\r\n", "\u00a0\u2009\u3000",
        ".,;:!?'\"()[]{}<>/\\|-_=+*&^%$#@~`", "'’s", "'t'll'RE've'M'D",
        "éèêëàâäôöûüçñßøåæœ", "ÉÈÀÇÑÖÜ", "αβγδεζηθΣσς", "абвгдеёжзийклмнопрстуфхцчшщъыьэюяЁЖ",
        "ابتثجحخدذرزسشصضطظعغفقكلمنهوي", "אבגדהוזחטיכלמנסעפצקרשת",
        "अआइईउऊएऐओऔकखगघचछजझटठडढणतथदधनपफबभमयरलवशषसह्ािीुूेैोौंः",
        "的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年", "あいうえおかきくけこアイウエオカキクケコ", "가나다라마바사아자차카타파하한국어",
        "กขคงจฉชซญดตถทนบปผพฟภมยรลวศษสหอฮะาิีึืุู", "\u0301\u0308\u0327\u0303",
        "😀😂🥲👍🏽👨‍👩‍👧🏳️‍🌈❤️🇯🇵", "\u200b\u200c\u200d\u200e\u200f\ufeff",
        "٠١٢٣٤٥٦٧٨٩०१२३४५६७८९", "½²³Ⅻ①",
        "<|END_OF_TURN_TOKEN|>", "<BOS_TOKEN>", "<|USER_TOKEN|>", "<|endoftext|>", "<s>", "</s>",
        "<|", "|>", "TOKEN", "\u2581", "Ġ",
    ]
    out = []
    for _ in range(count):
        n = rng.randint(1, 24)
        parts = []
        for _ in range(n):
            pool = rng.choice(pools)
            if len(pool) > 4 and not pool.startswith("<") and rng.random() < 0.8:
                k = rng.randint(1, 8)
                parts.append("".join(rng.choice(pool) for _ in range(k)))
            else:
                parts.append(pool)
        out.append("".join(parts))
    return out


def corpus() -> list[str]:
    return list(LANGUAGES.values()) + EDGE_CASES
