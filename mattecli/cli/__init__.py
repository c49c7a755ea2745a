"""The command line: each module parses one subcommand's flags, calls the core, and renders;
options.py parses the flag text several commands share (colours, output lists)."""
