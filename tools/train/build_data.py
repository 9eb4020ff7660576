#!/usr/bin/env python3
"""build_data.py - the training text for the small Nemotron model, built
reproducibly from one Debian package: dict-gcide (the Collaborative
International Dictionary of English, /usr/share/dictd/gcide.{index,dict.dz}).

Every dictionary entry is parsed into headword, part of speech and its first
senses. From those we write two kinds of documents:
  - prose: short English paragraphs ("An anvil is an iron block ...");
  - chat: conversations in the exact Nemotron-Mini chat format
    (<extra_id_0>System ... <extra_id_1>User ... <extra_id_1>Assistant ...),
    a village scholar (or librarian, or old sage) answering "What is a ...?"
    questions with the dictionary's definition, with greetings, follow-ups
    and thanks.
Headwords are split into train and held-out sets (by a seeded shuffle), so
held-out documents never mention a training headword as their subject.

Output (in OUT_DIR):
  train.jsonl, heldout.jsonl   one document per line: {"kind", "text"}
  spm_train.txt                the training documents' lines (for spm_train)
  heldout.txt                  held-out prose, plain text (for perplexity)
  heldout_chat.txt             held-out conversations, plain text

usage: build_data.py OUT_DIR [--seed 1234] [--heldout 0.02]
Python 3 standard library only; the same package version and seed give
byte-identical files.
"""
import argparse
import gzip
import json
import os
import random
import re
import sys

INDEX = "/usr/share/dictd/gcide.index"
DICT = "/usr/share/dictd/gcide.dict.dz"
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

# --- GCIDE markup ----------------------------------------------------------

NAMED = {
    "ae": "ae", "AE": "AE", "oe": "oe", "OE": "OE", "eth": "th", "thorn": "th",
    "yogh": "y", "ng": "ng", "th": "th", "deg": " degrees", "sect": "section ",
    "imac": "i", "aum": "a", "eum": "e", "ium": "i", "oum": "o", "uum": "u",
    "Aum": "A", "Eum": "E", "Oum": "O", "Uum": "U", "root": "", "asl": "",
    "add": "", "udd": "", "cre": "", "hand": "", "frac12": " 1/2",
    "frac14": " 1/4", "frac34": " 3/4", "frac13": " 1/3", "frac23": " 2/3",
}
ACCENT = re.compile(r"\[([\'\"`=^~.,*-])([A-Za-z]{1,2})\]|\[([A-Za-z]{1,2})([\'\"`=^~.,*-])\]")
NAMED_RE = re.compile(r"\[(" + "|".join(sorted(NAMED, key=len, reverse=True)) + r")\]")


def b64(s):
    v = 0
    for c in s:
        v = v * 64 + B64.index(c)
    return v


def unmark(text):
    """GCIDE's ASCII character entities ([ae], [=o], [e^]) as plain letters."""
    text = NAMED_RE.sub(lambda m: NAMED[m.group(1)], text)
    text = ACCENT.sub(lambda m: m.group(2) or m.group(3), text)
    return text


HEADER = re.compile(
    r"^(?P<hw>[^\\\n]+?) \\[^\\]*\\(?:\s*\([^)]*\))?,?\s*(?P<rest>.*)$", re.S)
POS_RE = re.compile(
    r"^(?P<pos>n\.|v\. ?t\.|v\. ?i\.|v\.|a\.|adj\.|adv\.|prep\.|conj\.|interj\.|pron\.)"
    r"(?:\s*(?:pl\.|sing\.|;|,|&|t\.|i\.)?)*\s*")
POS_NAME = {"n.": "noun", "v. t.": "verb", "v.t.": "verb", "v. i.": "verb",
            "v.i.": "verb", "v.": "verb", "a.": "adjective", "adj.": "adjective",
            "adv.": "adverb", "prep.": "preposition", "conj.": "conjunction",
            "interj.": "interjection", "pron.": "pronoun"}
SENSE = re.compile(r"^ {3}(\d+)\. (.*)$")
LABEL = re.compile(r"^\s*(?:\((?:[A-Z][A-Za-z.&, ]{0,30})\)\s*)+")
SOURCE = re.compile(r"\[(?:1913 Webster|Webster 1913 Suppl\.|PJC|WordNet 1\.5|Century Dict\.|"
                    r"[^\]]{0,40}(?:Webster|WordNet|Dict\.)[^\]]{0,20})\]")


def strip_brackets(text):
    """Drop [...] groups (etymologies, usage labels) with nesting."""
    out, depth = [], 0
    for c in text:
        if c == "[":
            depth += 1
        elif c == "]" and depth:
            depth -= 1
        elif not depth:
            out.append(c)
    return "".join(out)


def clean(text):
    text = SOURCE.sub(" ", text)
    text = strip_brackets(text)
    text = text.replace("{", "").replace("}", "")
    text = re.sub(r"\s*--\s*[A-Z].*$", "", text)  # a quotation's source: --Shak.
    text = re.sub(r";?\s*--\s*", "; ", text)
    text = re.sub(r"\s+", " ", text).strip()
    text = LABEL.sub("", text)
    text = re.sub(r"\s*;?\s*--\s*$", "", text)
    text = re.sub(r"\s+([,.;:])", r"\1", text).strip(" ,;:")
    return text


def parse_entry(raw):
    """(headword, pos, [senses]) or None."""
    raw = unmark(raw)
    paras = [p for p in re.split(r"\n\s*\n", raw) if p.strip()]
    if not paras:
        return None
    m = HEADER.match(paras[0])
    if not m:
        return None
    hw = m.group("hw").strip()
    rest = m.group("rest")
    pm = POS_RE.match(rest)
    if not pm:
        return None
    pos = POS_NAME.get(pm.group("pos"))
    rest = rest[pm.end():]
    senses = []
    # Numbered senses: a line "   N. text", continued by deeper-indented lines
    # up to a quotation (deeper still) or a source line.
    for para in paras:
        lines = para.split("\n")
        for i, line in enumerate(lines):
            sm = SENSE.match(line)
            if not sm:
                continue
            buf = [sm.group(2)]
            for more in lines[i + 1:]:
                if not more.startswith("      ") or more.startswith("         ") \
                        or "Webster" in more or SENSE.match(more):
                    break
                buf.append(more.strip())
            senses.append(" ".join(buf))
    if not senses:
        # Unnumbered: what follows the header (and its etymology) in the
        # first paragraph, up to a quotation or source line.
        buf = []
        lines = rest.split("\n")
        for line in lines:
            if line.startswith("         ") or "Webster" in line or "WordNet" in line:
                break
            buf.append(line.strip())
        senses = [" ".join(buf)]
    out = []
    for s in senses:
        s = clean(s)
        if len(s.split()) < 3 or len(s) > 300 or not re.match(r"[A-Za-z]", s):
            continue
        if re.search(r"[\\{}\[\]|<>]|See ", s):
            continue
        if not s.endswith("."):
            s += "."
        out.append(s[0].upper() + s[1:])
    if not out:
        return None
    return hw, pos, out[:3]


def read_entries():
    with gzip.open(DICT, "rb") as f:
        data = f.read()
    entries = {}
    with open(INDEX, encoding="utf-8") as f:
        for line in f:
            hw, off, size = line.rstrip("\n").split("\t")
            if hw.startswith("00-"):
                continue
            raw = data[b64(off):b64(off) + b64(size)].decode("utf-8", "replace")
            e = parse_entry(raw)
            if not e:
                continue
            word, pos, senses = e
            if not re.fullmatch(r"[A-Z]?[a-z]+(?:[- ][a-z]+)?", word) or len(word) < 2:
                continue
            if pos is None:
                continue
            word = word.lower()
            key = (word, pos)
            if key not in entries:  # the first (main) entry per word and POS
                entries[key] = senses
    return entries


# --- documents ---------------------------------------------------------------

def article(word):
    return "an" if word[0] in "aeiou" else "a"


def lower_first(s):
    if len(s) > 1 and s[0].isupper() and not s[1].isupper():
        return s[0].lower() + s[1:]
    return s


def statement(word, pos, sense):
    """One English sentence saying what WORD (of POS) means."""
    d = lower_first(sense)
    if pos == "noun":
        if re.match(r"(a|an|the|any|one|some|something|that|this|a kind|the act) ", d):
            return "%s %s is %s" % (article(word).capitalize(), word, d)
        return "%s is %s" % (word.capitalize(), d)
    if pos == "verb":
        if d.startswith("to "):
            return "To %s is %s" % (word, d)
        return "To %s means %s" % (word, d)
    if pos == "adjective":
        if re.match(r"(of|having|full|like|being|not|relating|pertaining|belonging|made|without|characterized) ", d):
            return "Something %s is %s" % (word, d)
        return "%s means %s" % (word.capitalize(), d)
    return "The %s \"%s\" means %s" % (pos, word, d)


def prose_doc(rng, group):
    parts = []
    for word, pos, senses in group:
        style = rng.random()
        if style < 0.65:
            s = statement(word, pos, senses[0])
            if len(senses) > 1 and rng.random() < 0.5:
                s += " It can also mean %s" % lower_first(senses[1])
        elif style < 0.85:
            s = "%s (%s). %s" % (word.capitalize(), pos, " ".join(
                "%d. %s" % (i + 1, x) for i, x in enumerate(senses)))
        else:
            s = "The word \"%s\" is %s %s. %s" % (word, article(pos), pos, senses[0])
        parts.append(s)
    return " ".join(parts) if rng.random() < 0.5 else "\n".join(parts)


NAMES = ["Aldric", "Mira", "Tobias", "Elowen", "Bram", "Isolde", "Corwin", "Hesper",
         "Osric", "Wren", "Maelis", "Gideon"]
PLACES = ["Oakvale", "Eastbrook", "Millford", "Stonehollow", "Ashford", "Riverend",
          "Thornwick", "Greywater"]
ROLES = ["the village scholar", "the old scholar", "the librarian", "the village sage",
         "the schoolmaster", "the keeper of the great dictionary"]
SYSTEMS = [
    "You are {name}, {role} of {place}. You know the meaning of every word and answer questions plainly.",
    "You are {name}, {role} of {place}. Travellers ask you what words mean; answer kindly and briefly.",
    "You are {role} of {place}, named {name}. Explain words in simple English.",
    "You are {name}. You live in {place} and you are {role}. Answer the visitor's questions.",
    "You are a helpful scholar who explains the meaning of words.",
    "You are {name}, {role}.",
    "",
]
GREETINGS = ["Hello!", "Hello.", "Good day.", "Greetings, scholar.", "Hi there.",
             "Good morning.", "Hello, who are you?", "Can you help me?"]
REPLIES = [
    "Good day, traveller. I am {name}, {role} of {place}. What word would you like to know?",
    "Greetings. I am {name}. Ask me the meaning of any word, and I will tell you.",
    "Hello, friend. I am {name}, {role}. How can I help you?",
    "Welcome to {place}. I am {name}. What would you like to know?",
]
ANON_REPLIES = [
    "Good day, traveller. I am a scholar. What word would you like to know?",
    "Hello, friend. Ask me the meaning of any word, and I will tell you.",
]
THANKS = ["Thank you.", "Thanks!", "Thank you, that helps.", "I see. Thank you.",
          "Farewell."]
WELCOME = ["You are welcome, traveller. Come back any time.",
           "You are welcome. Safe travels.", "Glad to help. Farewell, friend.",
           "It was my pleasure."]


def question(rng, word, pos):
    a = article(word)
    if pos == "noun":
        qs = ["What is %s %s?" % (a, word), "What is %s %s?" % (a, word),
              "What does %s mean?" % word, "What is the meaning of \"%s\"?" % word,
              "Tell me, what is %s %s?" % (a, word), "Define %s." % word,
              "What do you call %s %s?" % (a, word)]
    elif pos == "verb":
        qs = ["What does it mean to %s?" % word, "What does \"%s\" mean?" % word,
              "What does %s mean?" % word, "Define %s." % word]
    else:
        qs = ["What does %s mean?" % word, "What does the word \"%s\" mean?" % word,
              "What is the meaning of \"%s\"?" % word, "Define %s." % word]
    return rng.choice(qs)


def answer(rng, word, pos, senses):
    s = statement(word, pos, senses[0])
    style = rng.random()
    if style < 0.5:
        return s
    if style < 0.75:
        return "Ah, %s. %s" % (word, s)
    if style < 0.9 and len(senses) > 1:
        return "%s It can also mean %s" % (s, lower_first(senses[1]))
    return "The word \"%s\" is %s %s. %s" % (word, article(pos), pos, senses[0])


def scramble(rng, word):
    letters = list(word)
    for _ in range(10):
        rng.shuffle(letters)
        w = "".join(letters)
        if w != word:
            return w + rng.choice(["ix", "om", "ul", "ar"])
    return word + "zor"


def render(system, turns):
    """The Nemotron-Mini prompt format, as its chat template renders it, with
    every assistant turn included."""
    out = "<extra_id_0>System\n" + (system.strip() + "\n" if system else "") + "\n"
    for role, text in turns:
        out += "<extra_id_1>%s\n%s\n" % ("User" if role == "user" else "Assistant", text.strip())
    return out


def chat_doc(rng, items, known):
    name, place, role = rng.choice(NAMES), rng.choice(PLACES), rng.choice(ROLES)
    template = rng.choice(SYSTEMS)
    system = template.format(name=name, place=place, role=role)
    anon = "{name}" not in template
    fill = dict(name=name, place=place, role=role)
    turns = []
    if rng.random() < 0.35:
        turns.append(("user", rng.choice(GREETINGS)))
        if anon:
            turns.append(("assistant", rng.choice(ANON_REPLIES)))
        else:
            turns.append(("assistant", rng.choice(REPLIES).format(**fill)))
    for word, pos, senses in items:
        turns.append(("user", question(rng, word, pos)))
        turns.append(("assistant", answer(rng, word, pos, senses)))
        r = rng.random()
        if r < 0.15:
            turns.append(("user", rng.choice(["Does it have another meaning?",
                                              "Is there another meaning?",
                                              "Anything else?"])))
            if len(senses) > 1:
                turns.append(("assistant", "Yes. It can also mean %s" % lower_first(senses[1])))
            else:
                turns.append(("assistant", "No, that is the only meaning I know."))
        elif r < 0.22:
            turns.append(("user", "Can you use it in a sentence?"))
            turns.append(("assistant", "Of course. %s" % statement(word, pos, senses[0])))
    if rng.random() < 0.05:
        w = scramble(rng, items[0][0])
        if w not in known:
            turns.append(("user", "What is %s %s?" % (article(w), w)))
            turns.append(("assistant", rng.choice([
                "I do not know the word \"%s\", I am afraid." % w,
                "I have never heard of %s %s. Perhaps you mean another word?" % (article(w), w)])))
    if rng.random() < 0.3:
        turns.append(("user", rng.choice(THANKS)))
        turns.append(("assistant", rng.choice(WELCOME)))
    return render(system, turns)


def documents(rng, entries, chats_per_entry):
    items = [(w, p, s) for (w, p), s in entries]
    docs = []
    order = items[:]
    rng.shuffle(order)
    i = 0
    while i < len(order):
        n = rng.randint(2, 6)
        docs.append({"kind": "prose", "text": prose_doc(rng, order[i:i + n])})
        i += n
    known = {w for w, _, _ in items}
    for _ in range(chats_per_entry):
        order = items[:]
        rng.shuffle(order)
        i = 0
        while i < len(order):
            n = rng.choice([1, 1, 2, 2, 3, 4])
            docs.append({"kind": "chat", "text": chat_doc(rng, order[i:i + n], known)})
            i += n
    rng.shuffle(docs)
    return docs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--heldout", type=float, default=0.02,
                    help="fraction of headwords held out (default 0.02)")
    ap.add_argument("--chats-per-entry", type=int, default=2,
                    help="conversation passes over the train headwords (default 2)")
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    entries = read_entries()
    words = sorted({w for w, _ in entries})
    rng = random.Random(args.seed)
    rng.shuffle(words)
    n_held = max(1, int(len(words) * args.heldout))
    held = set(words[:n_held])
    keys = sorted(entries)
    train = [(k, entries[k]) for k in keys if k[0] not in held]
    test = [(k, entries[k]) for k in keys if k[0] in held]

    train_docs = documents(random.Random(args.seed + 1), train, args.chats_per_entry)
    test_docs = documents(random.Random(args.seed + 2), test, 1)

    def write_jsonl(path, docs):
        with open(path, "w", encoding="utf-8") as f:
            for d in docs:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")

    write_jsonl(os.path.join(args.out_dir, "train.jsonl"), train_docs)
    write_jsonl(os.path.join(args.out_dir, "heldout.jsonl"), test_docs)
    with open(os.path.join(args.out_dir, "spm_train.txt"), "w", encoding="utf-8") as f:
        for d in train_docs:
            for line in d["text"].split("\n"):
                if line.strip():
                    f.write(line + "\n")
    with open(os.path.join(args.out_dir, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write("\n\n".join(d["text"] for d in test_docs if d["kind"] == "prose") + "\n")
    with open(os.path.join(args.out_dir, "heldout_chat.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(d["text"] for d in test_docs if d["kind"] == "chat"))

    def size(docs, kind):
        sel = [d["text"] for d in docs if d["kind"] == kind]
        return "%d %s docs, %.2f MB" % (len(sel), kind, sum(len(t.encode()) for t in sel) / 1e6)

    pos_count = {}
    for (w, p) in entries:
        pos_count[p] = pos_count.get(p, 0) + 1
    print("entries: %d (%s), headwords: %d train, %d held out" % (
        len(entries), ", ".join("%s %d" % kv for kv in sorted(pos_count.items())),
        len(words) - n_held, n_held))
    print("train:   %s; %s" % (size(train_docs, "prose"), size(train_docs, "chat")))
    print("heldout: %s; %s" % (size(test_docs, "prose"), size(test_docs, "chat")))


if __name__ == "__main__":
    main()
