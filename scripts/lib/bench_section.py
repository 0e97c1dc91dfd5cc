#!/usr/bin/env python3
"""Writes one section of BENCHMARKS.md that a script other than `make bench` owns.

Usage: bench_section.py MARKER SECTION_TEXT

Such sections sit at the end of the file, each after its own marker line
(`<!-- written by scripts/<name>.sh -->`); `make bench` (scripts/bench_report.py) keeps
everything from the first marker on. This replaces the text from MARKER to the next marker
(or the end), or appends the section when MARKER is not there yet: the other sections stay.
"""
import sys

PREFIX = "<!-- written by scripts/"


def main():
    marker, section = sys.argv[1], sys.argv[2].rstrip() + "\n"
    try:
        text = open("BENCHMARKS.md").read()
    except OSError:
        text = "# Benchmarks\n"
    at = text.find(marker)
    if at < 0:
        text = text.rstrip() + "\n\n" + marker + "\n" + section
    else:
        after = at + len(marker)
        following = text.find(PREFIX, after)
        tail = "" if following < 0 else "\n" + text[following:]
        text = text[:at] + marker + "\n" + section + tail
    open("BENCHMARKS.md", "w").write(text)


if __name__ == "__main__":
    main()
