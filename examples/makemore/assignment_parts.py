"""Exercises 1-3 of makemore part 4 graded together, each from its own cell with its own points.

    gradcheck-kit grade --assignment examples/makemore/assignment_parts.py --out results NOTEBOOKS...

Exercise 1 is ``assignment.py``'s (26 gradients from the cell tagged ``exercise1`` or starting with
``# Exercise 1``); Exercise 2 grades ``dlogits`` from the ``exercise2`` cell (the cross-entropy backward
in one expression), Exercise 3 ``dhprebn`` from the ``exercise3`` cell (the batchnorm backward in one
formula), 2 points each. The gradebook has one row per student and a column per part.
"""

from dataclasses import replace

from assignment import ASSIGNMENT as EXERCISE_1

EXERCISE_2 = replace(EXERCISE_1, name="exercise2", points={"logits": 2.0}, tag="exercise2", marker="# Exercise 2")
EXERCISE_3 = replace(EXERCISE_1, name="exercise3", points={"hprebn": 2.0}, tag="exercise3", marker="# Exercise 3")

ASSIGNMENT = replace(EXERCISE_1, name="makemore", parts=(replace(EXERCISE_1, name="exercise1"), EXERCISE_2, EXERCISE_3))
