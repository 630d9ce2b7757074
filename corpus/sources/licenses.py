"""License of a repository: SPDX expressions from package metadata, else the text of LICENSE files.

Metadata is what authors declare on purpose (Cargo.toml `license`, package.json `license`,
pyproject.toml `project.license`, setup.cfg `metadata.license`, PKG-INFO `License-Expression` or
`License`/classifiers), so it wins; LICENSE/COPYING files are recognised by the clauses that define
each license, and several license files (LICENSE-MIT + LICENSE-APACHE, the Rust convention) mean
the user may pick any of them: they are joined with OR.

`is_permitted` evaluates an SPDX expression: `A OR B` is permitted when one side is, `A AND B` when
both are; the old Cargo form `MIT/Apache-2.0` is read as OR.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib

LICENSE_FILE = re.compile(r"^(licen[cs]e|copying|unlicense)([-._].*)?$", re.IGNORECASE)
METADATA_FILES = ("Cargo.toml", "package.json", "pyproject.toml", "setup.cfg", "PKG-INFO")

# Names people write in metadata -> SPDX ids (case-insensitive keys).
_ALIASES = {
    "mit": "MIT", "mit license": "MIT", "the mit license": "MIT", "expat": "MIT",
    "apache-2.0": "Apache-2.0", "apache 2.0": "Apache-2.0", "apache2": "Apache-2.0", "apache-2": "Apache-2.0",
    "apache license 2.0": "Apache-2.0", "apache license, version 2.0": "Apache-2.0",
    "apache software license": "Apache-2.0", "asl 2.0": "Apache-2.0",
    "bsd-2-clause": "BSD-2-Clause", "bsd 2-clause": "BSD-2-Clause", "simplified bsd": "BSD-2-Clause",
    "bsd-3-clause": "BSD-3-Clause", "bsd 3-clause": "BSD-3-Clause", "new bsd": "BSD-3-Clause",
    "modified bsd": "BSD-3-Clause", "isc": "ISC", "0bsd": "0BSD", "unlicense": "Unlicense",
    "mpl-2.0": "MPL-2.0", "gpl-2.0": "GPL-2.0-only", "gpl-3.0": "GPL-3.0-only", "gplv3": "GPL-3.0-only",
    "gplv2": "GPL-2.0-only", "lgpl-2.1": "LGPL-2.1-only", "lgpl-3.0": "LGPL-3.0-only", "agpl-3.0": "AGPL-3.0-only",
}
_CLASSIFIERS = {"MIT License": "MIT", "Apache Software License": "Apache-2.0", "ISC License (ISCL)": "ISC",
                "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
                "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
                "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0"}


def normalize_id(name: str) -> str:
    name = name.strip()
    return _ALIASES.get(name.lower(), name)


def license_from_text(text: str) -> str | None:
    """SPDX id of a LICENSE file's text, recognised by its defining clauses; None if unknown."""
    t = re.sub(r"\s+", " ", text).lower()
    if "apache license" in t and "version 2.0" in t:
        return "Apache-2.0"
    if "permission is hereby granted, free of charge" in t and "the software is provided \"as is\"" in t:
        return "MIT"
    if "permission to use, copy, modify, and/or distribute this software for any purpose" in t:
        return "ISC" if "copyright notice and this permission notice appear" in t else "0BSD"
    if "redistribution and use in source and binary forms" in t:
        return "BSD-3-Clause" if ("endorse or promote" in t) else "BSD-2-Clause"
    if "this is free and unencumbered software released into the public domain" in t:
        return "Unlicense"
    if "gnu affero general public license" in t:
        return "AGPL-3.0-only"
    if "gnu lesser general public license" in t:
        return "LGPL-3.0-only" if "version 3" in t else "LGPL-2.1-only"
    if "gnu general public license" in t:
        return "GPL-3.0-only" if "version 3" in t else "GPL-2.0-only"
    if "mozilla public license version 2.0" in t or "mozilla public license, v. 2.0" in t:
        return "MPL-2.0"
    return None


def license_from_metadata(name: str, text: str) -> str | None:
    """SPDX expression declared in one package metadata file (base name `name`), or None."""
    try:
        if name == "Cargo.toml":
            value = tomllib.loads(text).get("package", {}).get("license")
            return _clean_expression(value) if isinstance(value, str) else None
        if name == "package.json":
            obj = json.loads(text)
            value = obj.get("license") if isinstance(obj, dict) else None
            if isinstance(value, dict):
                value = value.get("type")
            if value is None and isinstance(obj, dict) and isinstance(obj.get("licenses"), list):
                names = [x.get("type") if isinstance(x, dict) else x for x in obj["licenses"]]
                value = " OR ".join(n for n in names if isinstance(n, str))
            return _clean_expression(value) if isinstance(value, str) and value else None
        if name == "pyproject.toml":
            project = tomllib.loads(text).get("project", {})
            value = project.get("license")
            if isinstance(value, dict):
                value = value.get("text")
            return _clean_expression(value) if isinstance(value, str) and len(value) < 200 else None
        if name == "setup.cfg":
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(text)
            value = parser.get("metadata", "license", fallback=None)
            return _clean_expression(value) if value and len(value) < 200 else None
        if name == "PKG-INFO":
            return _from_pkg_info(text)
    except (ValueError, configparser.Error, tomllib.TOMLDecodeError, AttributeError):
        return None  # unreadable metadata: fall back to the LICENSE files
    return None


def _from_pkg_info(text: str) -> str | None:
    head = text.split("\n\n", 1)[0]
    found = []
    for line in head.splitlines():
        key, _, value = line.partition(":")
        value = value.strip()
        if key == "License-Expression" and value:
            return _clean_expression(value)
        if key == "License" and value and value.upper() != "UNKNOWN" and len(value) < 100:
            found.append(_clean_expression(value))
        if key == "Classifier" and value.startswith("License :: OSI Approved :: "):
            cls = value.rsplit(" :: ", 1)[1]
            if cls in _CLASSIFIERS:
                found.append(_CLASSIFIERS[cls])
    return found[0] if found else None


def _clean_expression(value: str) -> str:
    """Cargo's old `MIT/Apache-2.0` means OR; names become SPDX ids where we know them."""
    tokens = re.split(r"(\s+OR\s+|\s+AND\s+|\s+WITH\s+|/|\(|\))", value.strip())
    out = []
    for tok in tokens:
        if tok == "/":
            out.append(" OR ")
        elif tok.strip() in ("OR", "AND", "WITH", "(", ")") or not tok.strip():
            out.append(tok)
        else:
            out.append(normalize_id(tok))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def is_permitted(expression: str | None, allowed: frozenset[str]) -> bool:
    """Whether an SPDX expression lets us use the code under one of the `allowed` licenses."""
    if not expression:
        return False
    tokens = re.findall(r"\(|\)|[^\s()]+", expression)
    pos = 0

    def parse_or() -> bool:
        nonlocal pos
        value = parse_and()
        while pos < len(tokens) and tokens[pos].upper() == "OR":
            pos += 1
            value = parse_and() or value
        return value

    def parse_and() -> bool:
        nonlocal pos
        value = parse_atom()
        while pos < len(tokens) and tokens[pos].upper() == "AND":
            pos += 1
            value = parse_atom() and value
        return value

    def parse_atom() -> bool:
        nonlocal pos
        if pos >= len(tokens):
            return False
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            value = parse_or()
            if pos < len(tokens) and tokens[pos] == ")":
                pos += 1
            return value
        if pos < len(tokens) and tokens[pos].upper() == "WITH":
            pos += 2  # an exception (e.g. LLVM-exception) only widens what is allowed
        return normalize_id(tok) in allowed

    result = parse_or()
    return result and pos == len(tokens)


def repo_license(files: dict[str, str]) -> tuple[str | None, str]:
    """(SPDX expression, where it came from) from {root-level file name: text}."""
    for name in METADATA_FILES:
        if name in files:
            found = license_from_metadata(name, files[name])
            if found:
                return found, name
    ids, names = [], []
    for name in sorted(files):
        if LICENSE_FILE.match(name):
            spdx = license_from_text(files[name])
            if spdx and spdx not in ids:
                ids.append(spdx)
                names.append(name)
    if ids:
        return " OR ".join(ids), "+".join(names)
    return None, ""
