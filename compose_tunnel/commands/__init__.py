"""The Click commands, one module per family; `cli` assembles them into the root group.
A new command goes in its own module here, calling one module of `workflows`."""
