"""Recipes: the stages of a compression run (distill, prune, QAT, convert) in one file.

A staged recipe (:mod:`edgedistill.recipes.schema`) lists stages that each
continue from the one before; :func:`run_recipe` runs them and collects every
stage's figures. Built-in recipes ship in the package
``edgedistill.recipes.builtin`` (the repository's top-level ``recipes/``);
``edgedistill distill --recipe NAME`` runs one with the teacher, student and
data given on the command line.

Example:
    >>> recipe = get("prune-pqat").with_shared(
    ...     {"teacher": "teacher-cnn", "student": "student-cnn", "data": "digits"})
    >>> result = run_recipe(recipe, "runs/pruned")
"""

from __future__ import annotations

import os
from pathlib import Path

from edgedistill._yaml import builtin_yaml_files, read_yaml
from edgedistill.errors import EdgeDistillError
from edgedistill.recipes.run import RecipeResult, StageResult, run_recipe
from edgedistill.recipes.schema import Recipe, Stage, is_staged, parse_recipe

__all__ = ["Recipe", "RecipeResult", "Stage", "StageResult", "builtin_recipes", "get", "load",
           "run_recipe"]


def builtin_recipes() -> dict[str, Path]:
    """The built-in recipes' names and files.

    Example:
        >>> sorted(builtin_recipes())  # doctest: +SKIP
        ['cluster', 'prune-pqat', 'qad', 'shrink-channels', 'sparse-2-4']
    """
    return {p.stem: p for p in builtin_yaml_files("edgedistill.recipes.builtin", "recipes")}


def load(spec: str | os.PathLike) -> Recipe | dict:
    """A recipe file or built-in name: a :class:`Recipe` if it has stages, else the
    ``distill()`` arguments of a single run.

    Raises:
        EdgeDistillError: a missing file that is no built-in name, or a bad recipe.
    """
    from edgedistill.distill.recipe import recipe_settings

    path = Path(spec)
    name = None
    if not path.exists() and str(spec) in builtin_recipes():
        name, path = str(spec), builtin_recipes()[str(spec)]
    elif not path.exists() and path.suffix not in (".yaml", ".yml"):
        raise EdgeDistillError(f"{spec}: no such recipe file or built-in recipe; built-in: "
                               f"{', '.join(builtin_recipes())}")
    data = read_yaml(path, "recipe")
    if is_staged(data):
        return parse_recipe(path, data, name)
    return recipe_settings(path, data)


def get(name: str) -> Recipe:
    """A built-in staged recipe by name."""
    recipes = builtin_recipes()
    if name not in recipes:
        raise EdgeDistillError(f"recipe {name!r}: unknown; built-in: {', '.join(recipes)}")
    return parse_recipe(recipes[name], read_yaml(recipes[name], "recipe"), name)
