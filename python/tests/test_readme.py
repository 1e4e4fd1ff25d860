"""The Python section of README.md runs as written: every ```python block in it, in order, from
the repository root (where its paths point), except a block after a "not run" comment (the
transformers recipe, which needs torch, transformers and a model)."""

import os
import re
import shutil

from conftest import ROOT


def readme_blocks():
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = re.search(r"^## Python\n(.*?)^## ", text, re.S | re.M).group(1)
    blocks = []
    for m in re.finditer(r"(<!--[^>]*-->\n)?```python\n(.*?)```", section, re.S):
        if m.group(1) and "not run" in m.group(1):
            continue
        blocks.append(m.group(2))
    return blocks


def test_readme_python_examples(tmp_path, monkeypatch, capsys):
    blocks = readme_blocks()
    assert len(blocks) >= 2
    # The examples write their outputs into the current directory; run them in a scratch copy of
    # the paths they read, so that the checkout stays clean.
    shutil.copytree(os.path.join(ROOT, "tests", "data"), tmp_path / "tests" / "data")
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "__readme__"})
    out = capsys.readouterr().out
    assert "[1536, 384] BF16" in out and "(8, 384) 262144" in out and "bert" in out, out
    assert os.path.exists(tmp_path / "restored.safetensors")
