"""Custom tools: manifests, packages, where they are registered from, and their store
(``docs/tools.md``).

- ``manifest``: ``kraken-tool.json`` (name, version, description, fields schema, entry point);
- ``package``: a folder as a deterministic tar.gz, and safe unpacking of uploaded archives;
- ``sources``: a folder on the server, a git repository (url + ref), an uploaded archive;
- ``store``: the ``custom_tool`` table, and the snapshot the stage checker validates against.
"""
