"""Workflows the commands run: plain functions over a workspace, no Click, one module per
command (or per step several commands share).

Data flows one way: options -> Settings (the saved ones, changed by the options) -> Plan ->
rendered files -> stack. The modules here sit above the core (settings, plan, renderers, stack)
and below the command line; none is imported by what it uses. This file imports nothing, so a
command loads only its own workflow: `generate` never pays for what runs a stack.
"""
