"""``dlcli init``: write a commented starter config that trains as written.

Read in order: ``survey.py`` looks at the data and chooses the data settings; ``text.py`` turns what it
found into YAML with a comment on each choice; ``write.py`` (:func:`init_config`) checks the options,
validates the text as ``dlcli train`` would and writes it atomically.

Imports: ``dlcli.data``, ``dlcli.runs``, ``dlcli.config``, ``dlcli.errors``. No TensorFlow here: ``init`` is
instant.
"""

from dlcli.starter.write import init_config

# What the CLI and the tests import from here.
__all__ = ["init_config"]
