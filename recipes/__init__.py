"""Built-in staged recipes (*.yaml), shipped as edgedistill.recipes.builtin."""
