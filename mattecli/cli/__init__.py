"""The command line: each module parses one subcommand's flags, calls the core, and renders."""
