"""Which code blocks of a page the executed-docs contract runs (tests/e2e/docs_contract.py)."""

from __future__ import annotations

from tests.e2e.docs_contract import blocks, script

PAGE = """# Title

```bash notest
./scripts/serve
```

```bash
echo one
```

```
untagged output sample
```

```python
print(1)
```

````bash
echo two
```not a fence end
````

~~~python
print(2)
~~~
"""


def test_blocks_by_language_in_order() -> None:
    assert blocks(PAGE, "bash") == ["echo one", "echo two\n```not a fence end"]
    assert blocks(PAGE, "python") == ["print(1)", "print(2)"]
    assert blocks(PAGE, "text") == []


def test_script_concatenates() -> None:
    assert script(PAGE, "python") == "print(1)\n\nprint(2)\n"
    assert script("no code here", "python") == ""
