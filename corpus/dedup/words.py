"""Words of a batch of texts as hashes of CCNet-normalized tokens, normalized with byte tables where a
token is ASCII.

`word_hashes` gives the same words and hashes as splitting each text with Arrow's
`utf8_split_whitespace`, normalizing each token with `corpus.dedup.text.normalize` and hashing it with
`segment_hashes` (tokens that normalize to nothing are dropped), for a fraction of the time. Measured on
3,000 Wikipedia leads (cProfile, benchmarks/bench_minhash.py), the regex passes of `normalize` and the
Unicode split were 40% of the signature path. So:
- texts are split on ASCII whitespace only and the tokens dictionary-encoded (natural text repeats its
  words, so each distinct token is processed once);
- a distinct token of ASCII bytes other than 28-31 is normalized by tables: A-Z lowered, digits to '0',
  the 32 ASCII punctuation and symbol characters (all in Unicode classes P or S) deleted, any other byte
  kept, which is what `normalize` does to ASCII;
- any other distinct token (non-ASCII bytes, or the separators 28-31 that Arrow's Unicode split also
  honours) is split again with `utf8_split_whitespace` (NBSP, thin space, ...) and its pieces are
  normalized character by character through a table of what `normalize` makes of each character
  (`_normalize_pieces`): the exact definition whatever the script, without compiling normalize's
  Unicode regexes for every batch (that compile was 2-3 ms of a 4096-document batch's ~50).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corpus.dedup.text import normalize, segment_hashes, string_buffers

_MAP = np.arange(256, dtype=np.uint8)
_MAP[ord("A"): ord("Z") + 1] += 32
_MAP[ord("0"): ord("9") + 1] = ord("0")
_KEEP = np.ones(256, bool)
for _lo, _hi in ((33, 47), (58, 64), (91, 96), (123, 126)):  # ASCII punctuation and symbols
    _KEEP[_lo: _hi + 1] = False
_SPECIAL = np.zeros(256, bool)  # bytes that send a token to the exact path
_SPECIAL[0x80:] = True
_SPECIAL[28:32] = True


_CHAR_TABLE: dict[int, str] = {}
"""Code point -> `normalize` of that one character, filled as characters first appear. Normalizing a
whitespace-free token character by character gives what `normalize` gives the whole token: lowercasing
(one code point at a time in Arrow), the digit mapping and the deletions all act on single code points."""
_CHAR_TABLE_MAX = 1 << 18  # entries (~25 MiB); cleared beyond, so adversarial input cannot grow it


def _normalize_pieces(pieces: list[str]) -> list[str]:
    chars = set().union(*pieces)
    new = sorted(c for c in chars if ord(c) not in _CHAR_TABLE)
    if new:
        if len(_CHAR_TABLE) + len(new) > _CHAR_TABLE_MAX:
            _CHAR_TABLE.clear()
            new = sorted(chars)
        _CHAR_TABLE.update(zip(map(ord, new), normalize(pa.array(new), collapse_whitespace=False).to_pylist()))
    return [p.translate(_CHAR_TABLE) for p in pieces]


def word_hashes(texts: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 hash of every normalized non-empty word, document after document; int64 word count per
    document). Nulls count as empty texts."""
    words = pc.ascii_split_whitespace(pc.fill_null(texts, ""))
    words = words.combine_chunks() if isinstance(words, pa.ChunkedArray) else words
    lengths = pc.list_value_length(words).to_numpy(zero_copy_only=False).astype(np.int64)
    encoded = pc.dictionary_encode(words.flatten())
    piece_hash, piece_off = _vocab_pieces(encoded.dictionary)
    idx = encoded.indices.to_numpy(zero_copy_only=False)
    per_entry = np.diff(piece_off)
    if per_entry.max(initial=0) <= 1:  # no token split again: drop the ones normalized away
        first = piece_off[:-1][idx]
        kept = per_entry[idx] == 1
        if kept.all():
            return piece_hash[first], lengths
        before = np.zeros(len(idx) + 1, np.int64)
        np.cumsum(kept, out=before[1:])
        ends = np.cumsum(lengths)
        return piece_hash[first[kept]], before[ends] - before[ends - lengths]
    count = per_entry[idx]  # words each token stands for: 0 (normalized away), 1, or more (split again)
    doc = np.repeat(np.arange(len(lengths)), lengths)
    lengths = np.bincount(doc, weights=count, minlength=len(lengths)).astype(np.int64)
    ends = np.cumsum(count)
    pos = np.arange(ends[-1] if len(ends) else 0, dtype=np.int64) + np.repeat(piece_off[:-1][idx] - (ends - count), count)
    return piece_hash[pos], lengths


def _vocab_pieces(vocab: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the normalized non-empty words of each distinct token: (flat uint64 hashes, int64
    offsets of length len(vocab) + 1)."""
    data, offs = string_buffers(vocab)
    base = int(offs[0]) if len(offs) else 0
    data = data[base: int(offs[-1])] if len(offs) else data[:0]
    offs = offs - base
    keep = np.take(_KEEP, data)
    kept_before = np.zeros(len(data) + 1, np.int64)
    np.cumsum(keep, out=kept_before[1:])
    lo, hi = kept_before[offs[:-1]], kept_before[offs[1:]]
    hashes = segment_hashes(np.take(_MAP, data[keep]), lo, hi)
    count = (hi > lo).astype(np.int64)
    special_before = np.zeros(len(data) + 1, np.int64)
    np.cumsum(np.take(_SPECIAL, data), out=special_before[1:])
    special = np.flatnonzero(special_before[offs[1:]] > special_before[offs[:-1]])
    if not len(special):
        return hashes[count > 0], np.concatenate([[0], np.cumsum(count)])
    pieces = pc.utf8_split_whitespace(vocab.take(pa.array(special)))
    n_pieces = pc.list_value_length(pieces).to_numpy(zero_copy_only=False).astype(np.int64)
    norm = pa.array(_normalize_pieces(pieces.flatten().to_pylist()), pa.large_string())
    nd, no = string_buffers(norm)
    b = int(no[0]) if len(no) else 0
    plo, phi = no[:-1] - b, no[1:] - b
    piece_hashes = segment_hashes(nd[b: int(no[-1])] if len(no) else nd[:0], plo, phi)
    piece_kept = phi > plo
    owner = np.repeat(np.arange(len(special)), n_pieces)
    count[special] = np.bincount(owner[piece_kept], minlength=len(special))
    # Flat layout: each entry's pieces in entry order; ordinary entries hold their one hash (if any).
    offsets = np.concatenate([[0], np.cumsum(count)])
    flat = np.empty(int(offsets[-1]), np.uint64)
    ordinary = np.ones(len(count), bool)
    ordinary[special] = False
    ordinary &= count > 0
    flat[offsets[:-1][ordinary]] = hashes[ordinary]
    kept_owner = owner[piece_kept]
    first_piece = np.concatenate([[0], np.cumsum(np.bincount(kept_owner, minlength=len(special)))])[:-1]
    within = np.arange(len(kept_owner)) - first_piece[kept_owner]
    flat[offsets[special][kept_owner] + within] = piece_hashes[piece_kept]
    return flat, offsets.astype(np.int64)
