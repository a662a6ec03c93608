"""Workflows the commands run: plain functions over a workspace, no Click, one module per
command (or per part several commands share: prepare, stacks, steps, startorder, access).

Data flows one way: options -> Settings (the saved ones, changed by the options) -> Plan ->
rendered files -> stack. These modules sit between the command line, which imports them where a
command runs, and the core (settings, plan, renderers, stack), which imports none of them; among
themselves they import one way too. A new command gets a module of its own here and its Click
command in a module of the `commands` package (cli.py assembles them). This file imports
nothing, so a command loads only its own workflow: `generate` never pays for what runs a stack.
"""
