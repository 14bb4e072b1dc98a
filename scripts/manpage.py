#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""manpage.py — build a man page from its template and the program's help.

    manpage.py cmkfs TEMPLATE CMKFS > cmkfs.8
    manpage.py kmsd TEMPLATE CMKFS-KMSD > cmkfs-kmsd.8
    manpage.py plain TEMPLATE CMKFS > cmkfs.conf.5

The commands and options of a man page are the program's own help text
(`cmkfs help`, `cmkfs help COMMAND`, `cmkfs-kmsd --help`) turned into roff,
so that the page and the help cannot disagree; the rest (description,
files, environment, examples) is written in the template.  Placeholders:
@VERSION@ (the program's), @DATE@ (SOURCE_DATE_EPOCH's, as Debian's
package build sets it, else the template's modification time), and
@COMMANDS@ with @KMS_OPTIONS@ (cmkfs) or @USAGE@ (kmsd).
"""
import os
import re
import subprocess
import sys
import time

# An option line: two spaces, the option, then two spaces or more and its
# description (argparse puts a long option's description on the next line).
OPTION = re.compile(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$")
CONTINUED = re.compile(r"^\s{6,}(\S.*)$")
# A subcommand line: the word, then two spaces or more and what it does.
DEFINITION = re.compile(r"^([a-z][\w-]*)\s{2,}(\S.*)$")


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.PIPE, text=True)
    if p.returncode != 0:
        sys.exit(f"manpage.py: {' '.join(argv)} exited {p.returncode}")
    return p.stdout


def esc(text):
    """Text as roff shows it literally."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return re.sub(r"^([.'])", r"\\&\1", text, flags=re.M)


def term(opt):
    """An option's term: its switches bold, its arguments italic."""
    out = []
    for w in opt.split():
        out.append(f"\\fB{esc(w)}\\fR" if w.startswith("-")
                   else f"\\fI{esc(w)}\\fR")
    return " ".join(out)


def blocks(text):
    """The help text as (kind, lines): usage, para, header, option,
    command (a subcommand and what it does)."""
    out = []
    lines = text.rstrip("\n").split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
            continue
        if line.startswith("usage: "):
            # Continuation lines keep their alignment under the first.
            cut = len("usage: ")
            use = [line[cut:]]
            i += 1
            while i < len(lines) and lines[i].startswith(" ") and \
                    not OPTION.match(lines[i]):
                use.append(lines[i][cut:] if lines[i][:cut].isspace()
                           else lines[i].strip())
                i += 1
            out.append(("usage", use))
            continue
        m = OPTION.match(line)
        d = DEFINITION.match(line)
        if m or d:
            m = m or d
            desc = [m.group(2)] if m.group(2) else []
            i += 1
            while i < len(lines) and CONTINUED.match(lines[i]):
                desc.append(lines[i].strip())
                i += 1
            out.append(("option" if d is None else "command",
                        [m.group(1).strip(), " ".join(desc)]))
            continue
        if re.match(r"^\S.*:$", line) and i + 1 < len(lines) and \
                OPTION.match(lines[i + 1]):
            out.append(("header", [line[:-1]]))
            i += 1
            continue
        para = []
        while i < len(lines) and lines[i].strip() and \
                not OPTION.match(lines[i]):
            para.append(lines[i].strip())
            i += 1
        out.append(("para", para))
    return out


def roff(bks, skip_header=None):
    """Blocks as roff; the options under skip_header are left out (they are
    documented once elsewhere) with a pointer to where."""
    out, skipping = [], False
    for kind, v in bks:
        if kind == "header":
            skipping = v[0] == skip_header
            if skipping:
                out += [".PP", f"The \\fB{esc(v[0].upper())}\\fR below "
                        "apply too."]
            else:
                out += [".PP", f"\\fB{esc(v[0])}:\\fR"]
            continue
        if kind == "option":
            if not skipping:
                out += [".TP", term(v[0]), esc(v[1])]
            continue
        if kind == "command":
            out += [".TP", f"\\fB{esc(v[0])}\\fR", esc(v[1])]
            continue
        skipping = False
        if kind == "usage":
            out += [".PP", ".nf"] + [esc(u) for u in v] + [".fi"]
        else:
            out += [".PP", esc(" ".join(v))]
    return out


def cmkfs_page(template, exe):
    overview = run([exe, "help"])
    cmds = re.findall(r"^  (\S+)\s+(.*)$",
                      overview.split("Commands:", 1)[1], re.M)
    if not cmds:
        sys.exit("manpage.py: no commands in 'cmkfs help'")
    kms = None
    body = []
    for name, summary in cmds:
        bks = blocks(run([exe, "help", name]))
        for i, (kind, v) in enumerate(bks):
            if kind == "header" and v[0] == "KMS options":
                opts = []
                for k2, v2 in bks[i + 1:]:
                    if k2 != "option":
                        break
                    opts.append(v2)
                if kms is None:
                    kms = opts
                elif opts != kms:
                    sys.exit(f"manpage.py: 'cmkfs help {name}' has other "
                             "KMS options than the other commands")
        body += [f'.SS "{esc(name)}"', esc(summary[0].upper() + summary[1:])
                 + "."] + roff(bks, "KMS options")
    kms_roff = []
    for opt, desc in kms or []:
        kms_roff += [".TP", term(opt), esc(desc)]
    return (template.replace("@COMMANDS@", "\n".join(body))
            .replace("@KMS_OPTIONS@", "\n".join(kms_roff)))


def kmsd_page(template, exe):
    usage = roff(blocks(run([exe, "--help"])))
    # The section starts the first paragraph.
    return template.replace("@USAGE@", "\n".join(usage[1:]))


PAGES = {"cmkfs": cmkfs_page, "kmsd": kmsd_page,
         "plain": lambda template, exe: template}


def main(argv):
    if len(argv) != 4 or argv[1] not in PAGES:
        sys.exit("usage: manpage.py cmkfs|kmsd|plain TEMPLATE PROGRAM")
    template = open(argv[2]).read()
    when = int(os.environ.get("SOURCE_DATE_EPOCH") or
               os.stat(argv[2]).st_mtime)
    version = run([argv[3], "--version"]).split()[1]
    template = (template.replace("@VERSION@", version)
                .replace("@DATE@", time.strftime('"%Y-%m-%d"',
                                                 time.gmtime(when))))
    page = PAGES[argv[1]](template, argv[3])
    left = re.findall(r"@[A-Z_]+@", page)
    if left:
        sys.exit(f"manpage.py: {argv[2]}: unknown placeholders {left}")
    sys.stdout.write(page)


if __name__ == "__main__":
    main(sys.argv)
