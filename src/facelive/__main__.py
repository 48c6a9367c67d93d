from facelive.cli import entry

entry()
