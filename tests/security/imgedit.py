#!/usr/bin/env python3
# imgedit.py: what an attacker does to a set of hers with `ckptctl image`:
# decode one file to JSON, change it, encode it back and fix up the
# manifest's sizes and crcs, so that the set passes every checksum.
#
#   imgedit.py CKPTCTL DIR FILE CODE
#
# FILE is a name in DIR; "core", "mm", "fdinfo", "pagemap" mean that file
# of the set's root pid.  CODE is Python run with d (the JSON document), e
# (its entries), E (e[0]), ROOT (the root pid) and read(NAME) (another file
# of the set, decoded) and size_of(DOC) (its size encoded); it edits d in
# place.
import json, os, subprocess, sys

ckptctl, d_dir, fname, code = sys.argv[1:5]


def crc32c(data, table=[]):
    if not table:
        for i in range(256):
            c = i
            for _ in range(8):
                c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
            table.append(c)
    c = 0xffffffff
    for b in data:
        c = table[(c ^ b) & 0xff] ^ (c >> 8)
    return c ^ 0xffffffff


def decode(path):
    return json.loads(subprocess.run([ckptctl, "image", "decode", path], check=True,
                                     stdout=subprocess.PIPE).stdout)


def encode(doc, path):
    tmp = path + ".json"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    subprocess.run([ckptctl, "image", "encode", tmp, path], check=True)
    os.unlink(tmp)


man_path = os.path.join(d_dir, "manifest")
man = decode(man_path)
root = man["entries"][0]["root_pid"]
if fname in ("core", "mm", "fdinfo", "pagemap"):
    fname = "%s-%d.img" % (fname, root)


def read(name):
    """Another file of the set, decoded (short names as for FILE)."""
    if name in ("core", "mm", "fdinfo", "pagemap"):
        name = "%s-%d.img" % (name, root)
    return decode(os.path.join(d_dir, name))


def size_of(doc):
    """The size of doc as an image file."""
    tmp = path + ".size"
    encode(doc, tmp)
    n = os.path.getsize(tmp)
    os.unlink(tmp)
    return n


path = os.path.join(d_dir, fname)
doc = decode(path)
exec(code, {"d": doc, "e": doc.get("entries"), "E": (doc.get("entries") or [None])[0],
            "ROOT": root, "json": json, "read": read, "DIR": d_dir, "os": os, "size_of": size_of})
encode(doc, path)
if fname == "manifest":
    man = doc
# The manifest: sizes and crcs of what is there now (page files are
# unchanged unless edited, their crc is recomputed only when their size
# or content may have changed: the edited file).
for f in man["entries"][0]["files"]:
    p = os.path.join(d_dir, f["name"])
    if f["name"] == fname or not f["name"].startswith("pages-"):
        with open(p, "rb") as fp:
            data = fp.read()
        f["size"], f["crc"] = len(data), crc32c(data)
encode(man, man_path)
