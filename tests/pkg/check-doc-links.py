#!/usr/bin/env python3
# check-doc-links.py [ROOT] -- the user docs point at things that exist.
#
# For README.md, doc/*.md, tests/bench/README.md and deploy/README.md:
#  - every relative Markdown link names an existing file inside the
#    repository, and its #anchor (if any) a heading of that file (GitHub's
#    anchor rule: lower case, punctuation dropped, spaces to hyphens);
#  - every plain mention of doc/*.md, doc/*.png, tests/bench/README.md or
#    deploy/README.md names an existing file;
#  - every repository path in backticks (pkg/, cmd/, include/, tests/,
#    config/, man/, deploy/; globs allowed) exists.
# Prints one line per broken reference and exits 1 if there is any.
import os, re, sys, glob
root = sys.argv[1] if len(sys.argv) > 1 else '.'
files = ['README.md', 'tests/bench/README.md', 'deploy/README.md'] + sorted(glob.glob('doc/*.md', root_dir=root))

def strip_code(text):
    out, fence = [], False
    for line in text.split('\n'):
        if re.match(r'^\s*(```|~~~)', line):
            fence = not fence; out.append(''); continue
        out.append('' if fence or re.match(r'^(    |\t)', line) else line)
    return out

def slug(h):
    h = h.strip().lower()
    h = re.sub(r'[^\w\- ]', '', h)       # GitHub: drop punctuation but - and _
    return h.replace(' ', '-')

def anchors(path):
    seen, res = {}, set()
    for line in strip_code(open(path, encoding='utf-8').read()):
        m = re.match(r'^(#{1,6})\s+(.*?)\s*#*\s*$', line)
        if not m: continue
        s = slug(m.group(2)); n = seen.get(s, 0); seen[s] = n + 1
        res.add(s if n == 0 else f'{s}-{n}')
    return res

bad = 0; count = 0
for f in files:
    p = os.path.join(root, f)
    if not os.path.exists(p): continue
    lines = strip_code(open(p, encoding='utf-8').read())
    for i, line in enumerate(lines, 1):
        line = re.sub(r'`[^`]*`', '', line)
        for m in re.finditer(r'\]\(([^)\s]+)\)', line):
            tgt = m.group(1)
            if re.match(r'^[a-z]+:', tgt): continue
            count += 1
            path, _, frag = tgt.partition('#')
            dest = os.path.normpath(os.path.join(os.path.dirname(p), path)) if path else p
            if not os.path.exists(dest):
                print(f'{f}:{i}: {tgt}: no such file'); bad += 1; continue
            if not os.path.abspath(dest).startswith(os.path.abspath(root) + os.sep):
                print(f'{f}:{i}: {tgt}: outside the repository'); bad += 1; continue
            if frag and dest.endswith('.md') and frag not in anchors(dest):
                print(f'{f}:{i}: {tgt}: no heading #{frag}'); bad += 1
    # plain mentions of a doc page or a README by path
    for i, line in enumerate(open(p, encoding='utf-8').read().split('\n'), 1):
        for m in re.finditer(r'(?<![\w/.])((?:\.\./)*(?:doc/[\w.-]+\.(?:md|png)|tests/bench/README\.md|deploy/README\.md))', line):
            count += 1
            t = m.group(1)
            cands = [os.path.join(root, t.lstrip('./')), os.path.normpath(os.path.join(os.path.dirname(p), t))]
            if not any(os.path.exists(c) for c in cands):
                print(f'{f}:{i}: mentions {t}: no such file'); bad += 1
    # repository paths named in backticks (globs allowed) must exist
    for i, line in enumerate(open(p, encoding='utf-8').read().split('\n'), 1):
        for m in re.finditer(r'`((?:pkg|cmd|include|tests|config|man|deploy)/[^`\s]*)`', line):
            pth = m.group(1).rstrip('/')
            if any(c in pth for c in '<>{}') or 'NAME' in pth or 'build/' in pth: continue
            count += 1
            if not glob.glob(os.path.join(root, pth)) and not os.path.exists(os.path.join(root, pth + '.c')):
                print(f'{f}:{i}: names {pth}: no such path'); bad += 1
print(f'{count} relative links in {len(files)} files, {bad} broken')
sys.exit(1 if bad else 0)
