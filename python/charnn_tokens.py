"""Text -> token ids exactly as charnn reads it (src/data), for training a charnn model in Python.

    from charnn_tokens import read_text, tokenize, encode
    text = read_text("corpus.txt", invalid_utf8="error")          # str; raises TextError
    tokens = tokenize(text, level="word", word_split="punct")      # list of str (line_endings: char level)
    ids, unknown = encode(tokens, vocabulary_tokens, rule="unk")    # list of int, {token: count}

What charnn does, and this module repeats (pure Python, no third-party packages):
- Bytes are UTF-8. A leading byte-order mark is dropped (TextDecoder does that). Invalid bytes
  are an error naming their offset, or with invalid_utf8="replace" become U+FFFD. A NUL byte in
  the first 64 KiB means a binary file (src/data/corpus-decoder.ts).
- Character level: every code point is a token (src/data/code-points.ts); with the tokenizer's
  lineEndings "lf", "\\r\\n" and a lone "\\r" read as "\\n" first, and without it (files from before
  the setting, or "keep") "\\r" is a token like any other.
- Word level (src/data/word-splitter.ts): JavaScript's whitespace (\\s, listed in WHITESPACE: not
  Python's str.isspace, which also counts U+001C-U+001F and U+0085) separates tokens; a line
  break is a token of its own, "\\n", written as "\\n", "\\r\\n" or a lone "\\r". With
  word_split="punct", a chunk between whitespace loses its leading and trailing punctuation
  graphemes (Unicode P* or S* first code point), each one a token, unless the whole chunk is
  punctuation ("--", "@-@"), which stays whole. Graphemes are approximated as charnn does: a
  pair of regional indicators, or a code point followed by marks (M*), emoji modifiers, tag
  characters, and ZWJ + any code point.
Unicode categories come from Python's unicodedata, whose Unicode version may differ from the
one in Node's regular expressions for characters assigned in the newest versions.
"""
import json
import re
import unicodedata

# JavaScript's \s (src/data/word-splitter.ts isWhitespace).
WHITESPACE = frozenset("\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
                       "\u2028\u2029\u202f\u205f\u3000\ufeff")
BINARY_SNIFF_BYTES = 64 * 1024
UNK_TOKEN = "<unk>"


class TextError(Exception):
    """A text charnn would refuse: `what` and a `hint`, as charnn's one-line errors."""

    def __init__(self, what, hint):
        super().__init__(f"{what} ({hint})")
        self.what, self.hint = what, hint


def read_text(path, invalid_utf8="error"):
    """The text of a UTF-8 file as charnn decodes it. Raises TextError for a binary file or
    invalid UTF-8 (with invalid_utf8="error"); OSError when the file cannot be read."""
    with open(path, "rb") as f:
        data = f.read()
    nul = data.find(b"\0", 0, BINARY_SNIFF_BYTES)
    if nul >= 0:
        raise TextError(f"{path} looks like a binary file (NUL byte at offset {nul})",
                        "charnn trains on UTF-8 text; convert other encodings first, e.g. iconv -f UTF-16 -t UTF-8")
    try:
        # utf-8-sig drops one leading BOM only, as TextDecoder does.
        return data.decode("utf-8-sig", errors="strict" if invalid_utf8 == "error" else "replace")
    except UnicodeDecodeError as e:
        raise TextError(f"{path} is not valid UTF-8 (bad bytes near byte offset {e.start})",
                        "the model's tokenizer says --invalid-utf8 error; fix the file, or edit the description's "
                        "tokenizer.invalidUtf8 to \"replace\" to read bad bytes as U+FFFD") from None


def tokenize(text, level, word_split="punct", line_endings="keep"):
    """The tokens of `text` (a str): code points at level "char" (line_endings "lf": every line
    ending as "\\n"; "keep": as written), words at level "word"."""
    if level == "char":
        return list(re.sub(r"\r\n?", "\n", text) if line_endings == "lf" else text)
    return list(_words(text, word_split))


def encode(tokens, vocabulary, rule, source="the text"):
    """Map tokens to ids of `vocabulary` (the tokens in id order). Tokens it lacks: rule "unk"
    reads them as <unk> (word level), "skip" drops them, "error" raises TextError naming up to 8
    (and `source`). Returns (ids, {unknown token: count})."""
    index = {t: i for i, t in enumerate(vocabulary)}
    unk = index.get(UNK_TOKEN) if rule == "unk" else None
    if rule == "unk" and unk is None:
        raise TextError("a character-level vocabulary has no <unk> token to map unknown characters to",
                        "use --unknown skip or --unknown error")
    ids, unknown = [], {}
    for token in tokens:
        i = index.get(token)
        if i is None:
            unknown[token] = unknown.get(token, 0) + 1
            if rule == "skip":
                continue
            i = unk
        ids.append(i)
    if unknown and rule == "error":
        shown = ", ".join(_js_quote(t) for t in list(unknown)[:8])
        more = f" and {len(unknown) - 8} more" if len(unknown) > 8 else ""
        n = len(unknown)
        raise TextError(f"{source} has {n} token{'' if n == 1 else 's'} the model's vocabulary lacks: {shown}{more}",
                        "pass --unknown skip to drop them" + (", or --unknown unk to read them as <unk>" if UNK_TOKEN in index else ""))
    return ids, unknown


def _js_quote(token):
    return json.dumps(token, ensure_ascii=False)


def _words(text, word_split):
    """WordSplitter.push + end over a whole text."""
    word_start = -1
    after_cr = False
    for i, ch in enumerate(text):
        if ch not in WHITESPACE:
            after_cr = False
            if word_start < 0:
                word_start = i
            continue
        if word_start >= 0:
            yield from _chunk(text[word_start:i], word_split)
            word_start = -1
        if ch == "\r" or (ch == "\n" and not after_cr):
            yield "\n"
        after_cr = ch == "\r"
    if word_start >= 0:
        yield from _chunk(text[word_start:], word_split)


def _chunk(chunk, word_split):
    """A whitespace-free chunk's tokens (WordSplitter.emitChunk)."""
    if word_split == "space" or not _has_punctuation_edge(chunk):
        yield chunk
        return
    characters = _graphemes(chunk)
    count = len(characters)
    lead = 0
    while lead < count and _is_punctuation(characters[lead]):
        lead += 1
    if lead == count:
        yield chunk
        return
    trail = count
    while _is_punctuation(characters[trail - 1]):
        trail -= 1
    yield from characters[:lead]
    yield "".join(characters[lead:trail])
    yield from characters[trail:]


def _is_punctuation(s):
    return unicodedata.category(s[0])[0] in "PS"


def _is_extending(ch):
    """[\\p{M}\\p{Cf}]: marks and format characters (ZWJ, variation selectors are M, tags are Cf)."""
    cat = unicodedata.category(ch)
    return cat[0] == "M" or cat == "Cf"


def _has_punctuation_edge(chunk):
    """The first code point, or the last one that is not extending, is punctuation."""
    if _is_punctuation(chunk):
        return True
    for ch in reversed(chunk):
        if not _is_extending(ch):
            return _is_punctuation(ch)
    return False


def _is_regional_indicator(ch):
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _graphemes(s):
    """charnn's CHARACTERS regex: \\p{RI}{2} | any (?:[\\p{M}\\p{Emoji_Modifier}\\u{E0020}-\\u{E007F}] | \\u200D any?)*"""
    out, i, n = [], 0, len(s)
    while i < n:
        if i + 1 < n and _is_regional_indicator(s[i]) and _is_regional_indicator(s[i + 1]):
            out.append(s[i : i + 2])
            i += 2
            continue
        j = i + 1
        while j < n:
            c = ord(s[j])
            if unicodedata.category(s[j])[0] == "M" or 0x1F3FB <= c <= 0x1F3FF or 0xE0020 <= c <= 0xE007F:
                j += 1
            elif s[j] == "\u200d":
                j = min(j + 2, n)
            else:
                break
        out.append(s[i:j])
        i = j
    return out
