"""Command-line interface: one small module per subcommand, loaded only when it is run."""
