#!/usr/bin/env python3
"""
gen_unicode_tables.py - writes src/tokenizer/unicode_tables.h, the Unicode
data that src/tokenizer/unicode.c needs for NFC, NFKC, NFD and NFKD.

Why this script exists: the library must not depend on ICU or carry someone
else's tables, so it derives its own from the Unicode Character Database as
Debian ships it (package `unicode-data`, files under /usr/share/unicode).
The output is committed; rerun this script only to move to a new Unicode
version:

    python3 tools/gen_unicode_tables.py            # default paths
    python3 tools/gen_unicode_tables.py --ucd DIR --out FILE

Python 3 standard library only; it reads local files and nothing else.

What it reads:
  UnicodeData.txt               canonical combining class (field 3) and the
                                one-step decomposition mapping (field 5)
  CompositionExclusions.txt     the script-specific and post-composition
                                version exclusions
  DerivedNormalizationProps.txt the quick-check properties (NFC_QC, NFKC_QC,
                                NFD_QC, NFKD_QC); its Full_Composition_
                                Exclusion list is used only to cross-check
                                the one computed here
  PropList.txt                  the White_Space property
  ReadMe.txt                    the Unicode version, for the header comment

What it writes (all tables const; see the comment it emits for layout):
  - a two-level lookup from code point to a "class" byte: canonical
    combining class plus quick-check flags, the only data the fast path of
    the normalizer touches;
  - a two-level lookup from code point to an offset into a uint32 array
    holding, per character, its full (recursively applied) canonical and
    compatibility decompositions and the list of characters it composes
    with when it is the first of a primary composite pair;
  - the White_Space ranges.

Hangul syllables are not tabled: unicode.c decomposes and composes them
arithmetically (Unicode chapter 3.12). The full decompositions stored here
do expand Hangul syllables that appear inside other characters' mappings
(e.g. U+320E PARENTHESIZED HANGUL KIYEOK A), so that stored decompositions
are final.

Each two-level lookup picks the block size that makes it smallest; equal
blocks are stored once.
"""

import argparse
import os
import re
import sys

HANGUL_S_BASE, HANGUL_L_BASE, HANGUL_V_BASE, HANGUL_T_BASE = 0xAC00, 0x1100, 0x1161, 0x11A7
HANGUL_L_COUNT, HANGUL_V_COUNT, HANGUL_T_COUNT = 19, 21, 28
HANGUL_N_COUNT = HANGUL_V_COUNT * HANGUL_T_COUNT
HANGUL_S_COUNT = HANGUL_L_COUNT * HANGUL_N_COUNT

# Quick-check flag bits in the class byte's upper half (see emitted comment).
FLAG_NFD_NO = 0x01
FLAG_NFKD_NO = 0x02
FLAG_NFC_NO = 0x04
FLAG_NFC_MAYBE = 0x08
FLAG_NFKC_NO = 0x10
FLAG_NFKC_MAYBE = 0x20

# Decomposition record header word layout.
HDR_CANON_LEN_BITS = 3    # full canonical decomposition length, 0..7
HDR_COMPAT_LEN_BITS = 5   # full compatibility decomposition length, 0..31
HDR_COMPAT_SHARED = 1 << 8
HDR_COMP_SHIFT = 16       # composition list offset in the upper 16 bits


def parse_range(field):
    field = field.strip()
    if ".." in field:
        a, b = field.split("..")
        return int(a, 16), int(b, 16)
    return int(field, 16), int(field, 16)


def data_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


def read_unicode_data(path):
    ccc = {}
    canon = {}    # one-step canonical mapping
    compat = {}   # one-step compatibility mapping (tagged)
    for line in data_lines(path):
        fields = line.split(";")
        cp = int(fields[0], 16)
        if fields[1].endswith(", Last>"):
            continue  # ranges (CJK, Hangul, ...) have default properties
        if int(fields[3]):
            ccc[cp] = int(fields[3])
        dm = fields[5].strip()
        if dm:
            if dm.startswith("<"):
                compat[cp] = [int(x, 16) for x in dm.split(">", 1)[1].split()]
            else:
                canon[cp] = [int(x, 16) for x in dm.split()]
    return ccc, canon, compat


def read_composition_exclusions(path):
    return {parse_range(line)[0] for line in data_lines(path)}


def read_derived_props(path):
    """Returns {property: {cp: value}} for the QC properties and the set of
    Full_Composition_Exclusion code points."""
    qc = {"NFD_QC": {}, "NFKD_QC": {}, "NFC_QC": {}, "NFKC_QC": {}}
    fce = set()
    for line in data_lines(path):
        fields = [f.strip() for f in line.split(";")]
        lo, hi = parse_range(fields[0])
        if fields[1] in qc:
            for cp in range(lo, hi + 1):
                qc[fields[1]][cp] = fields[2]
        elif fields[1] == "Full_Composition_Exclusion":
            fce.update(range(lo, hi + 1))
    return qc, fce


def read_white_space(path):
    ranges = []
    for line in data_lines(path):
        fields = [f.strip() for f in line.split(";")]
        if fields[1] == "White_Space":
            ranges.append(parse_range(fields[0]))
    return sorted(ranges)


def read_version(ucd):
    path = os.path.join(ucd, "ReadMe.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            m = re.search(r"Version (\d+\.\d+\.\d+)", f.read())
            if m:
                return m.group(1)
    with open(os.path.join(ucd, "DerivedNormalizationProps.txt"), encoding="utf-8") as f:
        m = re.search(r"DerivedNormalizationProps-(\d+\.\d+\.\d+)", f.readline())
    return m.group(1) if m else "unknown"


def hangul_decompose(cp):
    s = cp - HANGUL_S_BASE
    if not 0 <= s < HANGUL_S_COUNT:
        return None
    l = HANGUL_L_BASE + s // HANGUL_N_COUNT
    v = HANGUL_V_BASE + (s % HANGUL_N_COUNT) // HANGUL_T_COUNT
    t = HANGUL_T_BASE + s % HANGUL_T_COUNT
    return [l, v] if t == HANGUL_T_BASE else [l, v, t]


def full_decomposition(cp, canon, compat, with_compat):
    """Recursively applied decomposition, not yet canonically ordered (the
    normalizer orders whole runs of combining marks anyway)."""
    m = canon.get(cp)
    if m is None and with_compat:
        m = compat.get(cp)
    if m is None:
        m = hangul_decompose(cp)
    if m is None:
        return [cp]
    out = []
    for c in m:
        out.extend(full_decomposition(c, canon, compat, with_compat))
    return out


def two_level(values, default, limit, shift):
    """Splits values[0:limit] (dict cp -> small int) into blocks of 1<<shift
    entries; equal blocks are shared. Returns (stage1, stage2)."""
    size = 1 << shift
    blocks = {}
    stage1, stage2 = [], []
    for base in range(0, limit, size):
        block = tuple(values.get(cp, default) for cp in range(base, base + size))
        if block not in blocks:
            blocks[block] = len(blocks)
            stage2.extend(block)
        stage1.append(blocks[block])
    return stage1, stage2


def c_type_for(values):
    m = max(values) if values else 0
    return ("uint8_t", 1) if m < 256 else ("uint16_t", 2) if m < 65536 else ("uint32_t", 4)


def best_two_level(values, default, limit_cp):
    """Tries block sizes 2^4..2^9 and returns the smallest layout."""
    best = None
    for shift in range(4, 10):
        limit = ((limit_cp >> shift) + 1) << shift
        stage1, stage2 = two_level(values, default, limit, shift)
        size = len(stage1) * c_type_for(stage1)[1] + len(stage2) * c_type_for(stage2)[1]
        if best is None or size < best[0]:
            best = (size, shift, limit, stage1, stage2)
    return best


def format_array(ctype, name, values, per_line=16, fmt="{}"):
    lines = ["static const %s %s[%d] = {" % (ctype, name, len(values))]
    for i in range(0, len(values), per_line):
        lines.append("    " + ",".join(fmt.format(v) for v in values[i:i + per_line]) + ",")
    lines.append("};")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--ucd", default="/usr/share/unicode",
                    help="directory with the UCD files (Debian: /usr/share/unicode)")
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "src", "tokenizer", "unicode_tables.h")))
    args = ap.parse_args()

    ucd = args.ucd
    version = read_version(ucd)
    ccc, canon, compat = read_unicode_data(os.path.join(ucd, "UnicodeData.txt"))
    exclusions = read_composition_exclusions(os.path.join(ucd, "CompositionExclusions.txt"))
    qc, derived_fce = read_derived_props(os.path.join(ucd, "DerivedNormalizationProps.txt"))
    white_space = read_white_space(os.path.join(ucd, "PropList.txt"))

    # Full_Composition_Exclusion (UAX #15): the listed exclusions, the
    # singletons, and the non-starter decompositions.
    fce = set(exclusions)
    for cp, m in canon.items():
        if len(m) == 1 or ccc.get(cp, 0) or ccc.get(m[0], 0):
            fce.add(cp)
    if fce != derived_fce:
        sys.exit("Full_Composition_Exclusion differs from DerivedNormalizationProps.txt: %s"
                 % sorted(fce ^ derived_fce)[:10])

    # Primary composites: canonical pairs not excluded.
    compositions = {}  # first -> [(second, composite)]
    for cp, m in sorted(canon.items()):
        if cp in fce:
            continue
        assert len(m) == 2, hex(cp)
        compositions.setdefault(m[0], []).append((m[1], cp))

    # Consistency of the quick-check data with the mappings: NFD_QC=No iff a
    # canonical decomposition exists, NFKD_QC=No iff any does.
    for cp in set(canon) | set(compat) | set(qc["NFD_QC"]) | set(qc["NFKD_QC"]):
        if 0xAC00 <= cp < 0xAC00 + HANGUL_S_COUNT:
            continue
        assert (cp in canon) == (qc["NFD_QC"].get(cp) == "N"), hex(cp)
        assert (cp in canon or cp in compat) == (qc["NFKD_QC"].get(cp) == "N"), hex(cp)

    # ---- class byte: ccc and quick-check flags -------------------------
    flag_of = {}
    for prop, table in qc.items():
        for cp, v in table.items():
            bit = {("NFD_QC", "N"): FLAG_NFD_NO, ("NFKD_QC", "N"): FLAG_NFKD_NO,
                   ("NFC_QC", "N"): FLAG_NFC_NO, ("NFC_QC", "M"): FLAG_NFC_MAYBE,
                   ("NFKC_QC", "N"): FLAG_NFKC_NO, ("NFKC_QC", "M"): FLAG_NFKC_MAYBE}[(prop, v)]
            flag_of[cp] = flag_of.get(cp, 0) | bit
    classes = {(0, 0): 0}
    class_of = {}
    for cp in sorted(set(ccc) | set(flag_of)):
        key = (ccc.get(cp, 0), flag_of.get(cp, 0))
        if key not in classes:
            classes[key] = len(classes)
        class_of[cp] = classes[key]
    assert len(classes) <= 256
    # Hangul syllables are in flag_of (NFD_QC=No); keep them in the table,
    # the lookup is what tells the fast path they need decomposing.
    class_limit = max(class_of)
    class_size, class_shift, class_lim, class_stage1, class_stage2 = \
        best_two_level(class_of, 0, class_limit)

    # ---- decomposition / composition records ---------------------------
    comp_data = [0]   # offset 0 means "composes with nothing"
    comp_offset = {}
    for first in sorted(compositions):
        pairs = sorted(compositions[first])
        comp_offset[first] = len(comp_data)
        comp_data.append(len(pairs))
        for second, composite in pairs:
            comp_data.extend([second, composite])
    assert len(comp_data) < 65536

    decomp_data = [0]  # offset 0 means "no record"
    record_of = {}
    max_canon = max_compat = 0
    for cp in sorted(set(canon) | set(compat) | set(compositions)):
        if 0xAC00 <= cp < 0xAC00 + HANGUL_S_COUNT:
            continue
        cd = full_decomposition(cp, canon, compat, False) if cp in canon else []
        kd = full_decomposition(cp, canon, compat, True) if (cp in canon or cp in compat) else []
        shared = bool(cd) and kd == cd
        max_canon, max_compat = max(max_canon, len(cd)), max(max_compat, len(kd))
        assert len(cd) < (1 << HDR_CANON_LEN_BITS) and len(kd) < (1 << HDR_COMPAT_LEN_BITS)
        header = len(cd) | (len(kd) << HDR_CANON_LEN_BITS) | (HDR_COMPAT_SHARED if shared else 0)
        header |= comp_offset.get(cp, 0) << HDR_COMP_SHIFT
        record_of[cp] = len(decomp_data)
        decomp_data.append(header)
        decomp_data.extend(cd)
        if not shared:
            decomp_data.extend(kd)
    assert len(decomp_data) < 65536
    rec_limit = max(record_of)
    rec_size, rec_shift, rec_lim, rec_stage1, rec_stage2 = best_two_level(record_of, 0, rec_limit)

    class_values = [0] * len(classes)
    for (c, fl), idx in classes.items():
        class_values[idx] = c | (fl << 8)

    # ---- write -----------------------------------------------------------
    t1, _ = c_type_for(class_stage1)
    t2, _ = c_type_for(class_stage2)
    r1, _ = c_type_for(rec_stage1)
    r2, _ = c_type_for(rec_stage2)
    out = []
    out.append("""/*
 * unicode_tables.h - Unicode %(version)s normalization data for unicode.c.
 *
 * GENERATED FILE, do not edit. Regenerate with
 *
 *     python3 tools/gen_unicode_tables.py
 *
 * from the Unicode Character Database %(version)s as shipped by Debian's
 * `unicode-data` package (/usr/share/unicode: UnicodeData.txt,
 * CompositionExclusions.txt, DerivedNormalizationProps.txt, PropList.txt).
 *
 * Layout:
 *
 *   Class lookup (fast path). For cp < NT_UCD_CLASS_LIMIT:
 *       i = nt_ucd_class_stage2[(nt_ucd_class_stage1[cp >> NT_UCD_CLASS_SHIFT]
 *               << NT_UCD_CLASS_SHIFT) + (cp & ((1 << NT_UCD_CLASS_SHIFT) - 1))]
 *       nt_ucd_class_values[i] = ccc | flags << 8
 *   and 0 for larger cp (ccc 0, all quick checks Yes). Flags:
 *       NT_UCD_NFD_NO, NT_UCD_NFKD_NO, NT_UCD_NFC_NO, NT_UCD_NFC_MAYBE,
 *       NT_UCD_NFKC_NO, NT_UCD_NFKC_MAYBE  (the *_QC properties).
 *
 *   Record lookup (slow path), the same shape with NT_UCD_RECORD_*, gives an
 *   offset r into nt_ucd_decomp_data; 0 means no decomposition and no
 *   composition. nt_ucd_decomp_data[r] is a header word:
 *       bits 0-2   canonical length n (0: no canonical decomposition)
 *       bits 3-7   compatibility length k (0: no decomposition at all)
 *       bit  8     the compatibility decomposition is the canonical one
 *       bits 16-31 offset into nt_ucd_comp_data, 0 if the character is not
 *                  the first of any primary composite pair
 *   followed by the n code points of the full canonical decomposition and,
 *   unless bit 8 is set, the k code points of the full compatibility
 *   decomposition. Both are fully applied (recursively, Hangul expanded)
 *   but not canonically ordered.
 *
 *   nt_ucd_comp_data[c] = count, then count pairs (second, composite),
 *   sorted by second. Only primary composites are listed: composition
 *   exclusions, singletons and non-starter decompositions are left out.
 *
 *   Hangul syllables (U+AC00..U+D7A3) have no records; unicode.c handles
 *   them arithmetically.
 *
 * Sizes: class lookup %(class_size)d bytes (block %(class_block)d), record lookup %(rec_size)d
 * bytes (block %(rec_block)d), decomposition data %(dd)d words, composition data %(cd)d
 * words; %(ncomp)d primary composites; longest full decompositions %(mc)d
 * (canonical) and %(mk)d (compatibility) code points.
 */
#ifndef NT_TOKENIZER_UNICODE_TABLES_H
#define NT_TOKENIZER_UNICODE_TABLES_H

#include <stdint.h>

#define NT_UCD_VERSION "%(version)s"

#define NT_UCD_NFD_NO     0x%(f1)02x
#define NT_UCD_NFKD_NO    0x%(f2)02x
#define NT_UCD_NFC_NO     0x%(f3)02x
#define NT_UCD_NFC_MAYBE  0x%(f4)02x
#define NT_UCD_NFKC_NO    0x%(f5)02x
#define NT_UCD_NFKC_MAYBE 0x%(f6)02x

#define NT_UCD_HDR_CANON_LEN(h)    ((h) & 0x7u)
#define NT_UCD_HDR_COMPAT_LEN(h)   (((h) >> 3) & 0x1fu)
#define NT_UCD_HDR_COMPAT_SHARED(h) (((h) >> 8) & 1u)
#define NT_UCD_HDR_COMP_OFFSET(h)  ((h) >> 16)
#define NT_UCD_MAX_DECOMPOSITION %(mk)d

#define NT_UCD_CLASS_SHIFT %(class_shift)d
#define NT_UCD_CLASS_LIMIT 0x%(class_lim)X
#define NT_UCD_RECORD_SHIFT %(rec_shift)d
#define NT_UCD_RECORD_LIMIT 0x%(rec_lim)X
""" % dict(version=version, class_size=class_size, class_block=1 << class_shift,
           rec_size=rec_size, rec_block=1 << rec_shift, dd=len(decomp_data),
           cd=len(comp_data), ncomp=sum(len(v) for v in compositions.values()),
           mc=max_canon, mk=max_compat, f1=FLAG_NFD_NO, f2=FLAG_NFKD_NO,
           f3=FLAG_NFC_NO, f4=FLAG_NFC_MAYBE, f5=FLAG_NFKC_NO, f6=FLAG_NFKC_MAYBE,
           class_shift=class_shift, class_lim=class_lim, rec_shift=rec_shift,
           rec_lim=rec_lim))
    out.append(format_array("uint16_t", "nt_ucd_class_values", class_values, 12, "0x{:04x}"))
    out.append(format_array(t1, "nt_ucd_class_stage1", class_stage1, 24))
    out.append(format_array(t2, "nt_ucd_class_stage2", class_stage2, 32))
    out.append(format_array(r1, "nt_ucd_record_stage1", rec_stage1, 24))
    out.append(format_array(r2, "nt_ucd_record_stage2", rec_stage2, 20))
    out.append(format_array("uint32_t", "nt_ucd_decomp_data", decomp_data, 12, "0x{:x}"))
    out.append(format_array("uint32_t", "nt_ucd_comp_data", comp_data, 12, "0x{:x}"))
    ws = ["    {0x%04X, 0x%04X}," % r for r in white_space]
    out.append("/* White_Space (PropList.txt), sorted ranges. */\n"
               "static const uint32_t nt_ucd_white_space[%d][2] = {\n%s\n};"
               % (len(white_space), "\n".join(ws)))
    out.append("\n#endif")
    text = "\n\n".join(out) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    print("wrote %s: %d bytes; class lookup %d B (block %d), record lookup %d B (block %d), "
          "decomp %d words, comp %d words, %d classes"
          % (args.out, len(text), class_size, 1 << class_shift, rec_size, 1 << rec_shift,
             len(decomp_data), len(comp_data), len(classes)))


if __name__ == "__main__":
    main()
