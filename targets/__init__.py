"""Built-in hardware target definitions (*.yaml), shipped as edgedistill.targets.builtin."""
