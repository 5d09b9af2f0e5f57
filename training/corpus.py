"""Build the training corpus: four clearly different domains from Debian packages.

    english     fortunes                 (English quotations, jokes, anecdotes)
    german      fortunes-de              (German quotations, poems, anecdotes)
    python      libpython3.11-stdlib     (Python standard library sources)
    arithmetic  generated here           (sums, differences, products, counting)

Each domain is a list of documents. A stable hash of each document decides whether it is
held out; held-out documents never enter the training text. Output, per domain:
    <out>/<domain>.train.txt     training documents joined by <|endoftext|>
    <out>/<domain>.heldout.txt   held-out documents joined by <|endoftext|>
and a few KB of held-out text per domain for the app (public/eval/<domain>.txt).
"""
from __future__ import annotations

import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

DOMAINS = ["english", "german", "python", "arithmetic"]
EOT = "<|endoftext|>"
APT_PACKAGES = ["fortunes", "fortunes-de", "libpython3.11-stdlib"]
# More training text (training only: the held-out split and public/eval come from the sources above alone,
# so held-out numbers stay comparable with models trained before these were added).
EXTRA_PACKAGES = ["bible-kjv", "python3.11-doc"]
PY_DOC_SOURCES = Path("/usr/share/doc/python3.11/html/_sources")
INFO_DIR = Path("/usr/share/info")
FORTUNES_EN = Path("/usr/share/games/fortunes")
FORTUNES_DE = Path("/usr/share/games/fortunes/de")
PY_STDLIB = Path("/usr/lib/python3.11")
# Fortune files that are pictures rather than prose.
SKIP_FORTUNE_FILES = {"ascii-art", "asciiart"}
# A second round of training-only text (build_extra2, for the third continuation of the parent): more German
# (the German man pages and the Debian reference), more English (fortune-like collections, English man pages),
# more Python (the installed third-party packages), fresh arithmetic.
EXTRA2_PACKAGES = ["fortune-anarchism", "fortunes-bofh-excuses", "manpages", "manpages-de", "debian-reference-de"]
# Fortune files those packages (and fortunes-mario, Portuguese) add to FORTUNES_EN: never part of the base
# corpus, whose held-out split and public/eval must not change when they are installed.
EXTRA2_FORTUNE_FILES = {"anarchism", "bofh-excuses"}
MAN_EN, MAN_DE = Path("/usr/share/man"), Path("/usr/share/man/de")
DEBIAN_REFERENCE_DE = Path("/usr/share/debian-reference/debian-reference.de.txt.gz")
PY_DIST = Path("/usr/lib/python3/dist-packages")


def ensure_packages(packages: list[str]) -> None:
    """apt-get install whatever is missing (idempotent: no-op when all are installed)."""
    missing = []
    for pkg in packages:
        ok = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        if "install ok installed" not in ok.stdout:
            missing.append(pkg)
    if not missing:
        return
    print(f"corpus: installing Debian packages {missing}", flush=True)
    if shutil.which("apt-get") is None:
        sys.exit(f"corpus: the Debian packages {missing} are missing and apt-get is not available; install them by hand.")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(prefix + ["apt-get", "install", "-y", "--no-install-recommends", *missing], check=True, env=env)


def is_held_out(domain: str, doc: str, every: int) -> bool:
    """Stable choice (same on every machine and run): about 1 in `every` documents."""
    digest = hashlib.sha1((domain + "\0" + doc).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "little") % every == 0


def clean(text: str) -> str:
    text = re.sub(r".\x08", "", text)  # overstrike (bold/underline via backspace)
    text = text.replace("\r", "").replace("\t", "    ")
    text = "".join(ch for ch in text if ch == "\n" or ch >= " ")
    return text.strip()


def fortune_docs(folder: Path, only: set[str] | None = None) -> list[str]:
    """Every entry of the fortune files in `folder` (the base corpus: not the extra round's files), or of
    the files named in `only`."""
    docs = []
    for path in sorted(folder.iterdir()):
        if path.is_dir() or path.is_symlink() or path.suffix in (".dat", ".u8") or path.name in SKIP_FORTUNE_FILES:
            continue
        if (only is not None and path.name not in only) or (
            only is None and (path.name in EXTRA2_FORTUNE_FILES or path.name.startswith("mario."))
        ):
            continue
        raw = path.read_bytes()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            text = raw.decode("latin-1")
        for entry in re.split(r"\n%\n", text):
            entry = clean(entry)
            if len(entry) >= 20:
                docs.append(entry)
    return docs


def python_docs(max_chars: int) -> list[str]:
    """Top-level stdlib modules, cut at blank lines into chunks of about 2 KB."""
    docs, total = [], 0
    for path in sorted(PY_STDLIB.glob("*.py")):
        text = clean(path.read_text("utf-8", errors="replace"))
        chunk = ""
        for block in re.split(r"\n\n+", text):
            chunk = chunk + "\n\n" + block if chunk else block
            if len(chunk) >= 2000:
                docs.append(chunk)
                total += len(chunk)
                chunk = ""
        if chunk:
            docs.append(chunk)
            total += len(chunk)
        if total >= max_chars:
            break
    return docs


def arithmetic_line(rng: random.Random) -> str:
    kind = rng.randrange(7)
    a, b = rng.randrange(0, 100), rng.randrange(0, 100)
    if kind == 0:
        return f"{a} + {b} = {a + b}"
    if kind == 1:
        a, b = max(a, b), min(a, b)
        return f"{a} - {b} = {a - b}"
    if kind == 2:
        a, b = rng.randrange(0, 13), rng.randrange(0, 13)
        return f"{a} * {b} = {a * b}"
    if kind == 3:
        b = rng.randrange(1, 13)
        q = rng.randrange(0, 13)
        return f"{b * q} / {b} = {q}"
    if kind == 4:
        c = rng.randrange(1, 10)
        return f"({a} + {b}) * {c} = {(a + b) * c}"
    if kind == 5:
        start, step = rng.randrange(0, 200), rng.choice([1, 2, 5, 10])
        return ", ".join(str(start + i * step) for i in range(rng.randrange(5, 10)))
    a, b = rng.randrange(100, 1000), rng.randrange(100, 1000)
    return f"{a} + {b} = {a + b}"


def arithmetic_docs(max_chars: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    docs, total = [], 0
    while total < max_chars:
        doc = "\n".join(arithmetic_line(rng) for _ in range(rng.randrange(8, 24)))
        docs.append(doc)
        total += len(doc)
    return docs


def collect(domain: str, max_chars: int, seed: int) -> list[str]:
    if domain == "english":
        docs = fortune_docs(FORTUNES_EN)
    elif domain == "german":
        docs = fortune_docs(FORTUNES_DE)
    elif domain == "python":
        docs = python_docs(max_chars)
    elif domain == "arithmetic":
        docs = arithmetic_docs(max_chars, seed)
    else:
        raise ValueError(domain)
    # Keep the domain within its budget, but sample across all files rather than the first few.
    random.Random(seed).shuffle(docs)
    return within(docs, max_chars)


def within(docs: list[str], max_chars: int, leaked: list[str] | None = None) -> list[str]:
    """The documents, in order, until max_chars is reached; those containing a paragraph of `leaked`
    (public/eval's) are passed over."""
    kept, total = [], 0
    for doc in docs:
        if total >= max_chars:
            break
        if leaked and any(p in doc for p in leaked):
            continue
        kept.append(doc)
        total += len(doc)
    return kept


def eval_paragraphs(path: Path | None) -> list[str]:
    """The paragraphs of a public/eval text long enough to identify the document they come from."""
    if path is None or not path.exists():
        return []
    return [p.strip() for p in path.read_text("utf-8").split("\n\n") if len(p.strip()) >= 60]


def english_extra_docs() -> list[str]:
    """The King James Bible (one document per chapter), the Python documentation's reStructuredText
    sources, and the GNU manuals installed in info form."""
    docs: list[str] = []
    bible = subprocess.run(["bible", "-l0", "Ge1:1-Re22:21"], capture_output=True, text=True, check=True).stdout
    for chapter in re.split(r"\n(?=\S[^\n]* \d+\n)", bible):
        text = clean(re.sub(r"(?m)^ +\d+ ", "", chapter))
        if len(text) >= 200:
            docs.append(text)
    for path in sorted(PY_DOC_SOURCES.rglob("*.txt")):
        text = clean(path.read_text("utf-8", errors="replace"))
        docs.extend(chunk for chunk in chunks(text, 3000) if len(chunk) >= 200)
    for path in sorted(INFO_DIR.glob("*.info*.gz")):
        if path.name.startswith("python"):  # the Python docs again (already read from their sources)
            continue
        raw = subprocess.run(["zcat", str(path)], capture_output=True, check=True).stdout.decode("utf-8", "replace")
        for node in raw.split("\x1f"):
            text = clean(node)
            if len(text) >= 200 and not text.startswith("Tag Table"):
                docs.append(text)
    return docs


def python_extra_docs() -> list[str]:
    """Standard-library packages (email, asyncio, json, ...) beyond the top-level modules; no test suites."""
    docs: list[str] = []
    for path in sorted(PY_STDLIB.glob("*/**/*.py")):
        rel = path.relative_to(PY_STDLIB).parts
        if rel[0] in ("test", "idlelib", "lib2to3", "site-packages", "dist-packages") or "tests" in rel or "test" in rel:
            continue
        docs.extend(chunks(clean(path.read_text("utf-8", errors="replace")), 2000))
    return docs


def man_text(path: Path) -> str:
    """A man page's roff source as plain text: requests and comments dropped, font and character escapes
    resolved (good enough for language modelling; no groff needed)."""
    raw = subprocess.run(["zcat", str(path)], capture_output=True).stdout.decode("utf-8", "replace")
    lines = []
    for line in raw.split("\n"):
        if line.startswith((".", "'")):
            words = line.split(None, 1)  # .SH/.SS titles and .B/.I text keep their words
            if words and words[0] in (".SH", ".SS", ".B", ".I", ".BR", ".IR", ".RB", ".BI", ".IB") and len(words) > 1:
                lines.append(words[1].replace('"', ""))
            continue
        lines.append(line)
    text = "\n".join(lines)
    text = re.sub(r"\\f(\[[^\]]*\]|\(..|.)", "", text)  # fonts
    text = re.sub(r"\\\(em|\\\(en", "-", text)
    text = re.sub(r"\\\((..)|\\\*\((..)|\\\[[^\]]*\]", "", text)
    text = text.replace("\\-", "-").replace("\\&", "").replace("\\ ", " ").replace("\\e", "\\").replace("\\%", "")
    text = re.sub(r"\\[,/]", "", text)
    return clean(text)


def man_docs(folder: Path) -> list[str]:
    docs: list[str] = []
    for path in sorted(folder.glob("man[1-8]/*.gz")):
        text = man_text(path)
        if len(text) >= 200:
            docs.extend(chunk for chunk in chunks(text, 3000) if len(chunk) >= 200)
    return docs


def extra2_docs(domain: str, max_chars: int, seed: int) -> list[str]:
    """A domain's second-round documents in the order they are taken: English keeps its fortune-like
    collections whole and first (closest to the English eval text), then shuffled man pages; the other
    domains are shuffled."""
    rng = random.Random(seed)
    if domain == "english":
        man = man_docs(MAN_EN)
        rng.shuffle(man)
        return fortune_docs(FORTUNES_EN, EXTRA2_FORTUNE_FILES) + man
    if domain == "german":
        ref = subprocess.run(["zcat", str(DEBIAN_REFERENCE_DE)], capture_output=True).stdout.decode("utf-8", "replace")
        docs = man_docs(MAN_DE) + [c for c in chunks(clean(ref), 3000) if len(c) >= 200]
    elif domain == "python":
        docs = []
        for path in sorted(PY_DIST.rglob("*.py")):
            rel = path.relative_to(PY_DIST).parts
            if "tests" in rel or "test" in rel or "testing" in rel or path.stat().st_size > 200_000:
                continue
            docs.extend(chunks(clean(path.read_text("utf-8", errors="replace")), 2000))
    else:
        docs = arithmetic_docs(max_chars, seed + 1)  # fresh lines: another seed than the base corpus
    rng.shuffle(docs)
    return docs


def build_extra2(out_dir: Path, chars: dict[str, int], seed: int, eval_dir: Path | None) -> dict[str, int]:
    """<out>/<domain>.extra2.txt: the second round of training-only text (extra2_docs), up to chars[domain]
    per domain. Documents sharing a paragraph with public/eval are left out."""
    ensure_packages(EXTRA2_PACKAGES)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {}
    for domain in DOMAINS:
        docs = extra2_docs(domain, chars[domain], seed)
        kept = within(docs, chars[domain], eval_paragraphs(eval_dir / f"{domain}.txt" if eval_dir else None))
        total = sum(map(len, kept))
        (out_dir / f"{domain}.extra2.txt").write_text(EOT.join(kept), "utf-8")
        stats[domain] = total
        print(f"corpus: {domain:10s} second extra text: {len(kept)} documents, {total} characters", flush=True)
    return stats


def chunks(text: str, size: int) -> list[str]:
    """Cut at blank lines into pieces of about `size` characters."""
    out, chunk = [], ""
    for block in re.split(r"\n\n+", text):
        chunk = chunk + "\n\n" + block if chunk else block
        if len(chunk) >= size:
            out.append(chunk)
            chunk = ""
    if chunk:
        out.append(chunk)
    return out


def build_extra(out_dir: Path, max_chars: int, seed: int) -> dict[str, int]:
    """<out>/<domain>.extra.txt: training-only text per domain (empty for domains without extra sources)."""
    ensure_packages(EXTRA_PACKAGES)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {}
    for domain in DOMAINS:
        docs = english_extra_docs() if domain == "english" else python_extra_docs() if domain == "python" else []
        random.Random(seed).shuffle(docs)
        kept = within(docs, max_chars)
        total = sum(map(len, kept))
        (out_dir / f"{domain}.extra.txt").write_text(EOT.join(kept), "utf-8")
        stats[domain] = total
        print(f"corpus: {domain:10s} extra training text: {len(kept)} documents, {total} characters", flush=True)
    return stats


def build_corpus(out_dir: Path, eval_dir: Path | None, max_chars: int, seed: int, held_out_every: int = 40,
                 eval_chars: int = 4000) -> dict[str, dict[str, int]]:
    ensure_packages(APT_PACKAGES)
    out_dir.mkdir(parents=True, exist_ok=True)
    stats = {}
    for domain in DOMAINS:
        docs = collect(domain, max_chars, seed)
        train = [d for d in docs if not is_held_out(domain, d, held_out_every)]
        held = [d for d in docs if is_held_out(domain, d, held_out_every)]
        eval_path = eval_dir / f"{domain}.txt" if eval_dir is not None else None
        if eval_path is not None and eval_path.exists():
            # The shipped eval texts are the held-out set every card compares against: keep them as they
            # are, and keep every training document that contains one of their paragraphs out of training
            # (the Debian sources can change between releases and reshuffle which documents are held out).
            paragraphs = eval_paragraphs(eval_path)
            leaked = [d for d in train if any(p in d for p in paragraphs)]
            if leaked:
                print(f"corpus: {domain}: {len(leaked)} training documents overlap public/eval; moved to held-out",
                      flush=True)
                train = [d for d in train if d not in leaked]
                held = held + leaked
        (out_dir / f"{domain}.train.txt").write_text(EOT.join(train), "utf-8")
        (out_dir / f"{domain}.heldout.txt").write_text(EOT.join(held), "utf-8")
        if eval_path is not None and not eval_path.exists():
            eval_dir.mkdir(parents=True, exist_ok=True)
            sample, size = [], 0
            for doc in held:
                if size >= eval_chars:
                    break
                sample.append(doc)
                size += len(doc) + 2
            (eval_dir / f"{domain}.txt").write_text("\n\n".join(sample) + "\n", "utf-8")
        stats[domain] = {"train_docs": len(train), "train_chars": sum(map(len, train)),
                         "heldout_docs": len(held), "heldout_chars": sum(map(len, held))}
        print(f"corpus: {domain:10s} {stats[domain]}", flush=True)
    return stats


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--eval-dir", type=Path)
    ap.add_argument("--max-chars", type=int, default=3_000_000)
    ap.add_argument("--seed", type=int, default=1234)
    a = ap.parse_args()
    build_corpus(a.out, a.eval_dir, a.max_chars, a.seed)
