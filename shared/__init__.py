"""OmniRoute Edge core package: domain rules, wire formats, provider catalogue, ports and adapters."""
