"""The autograder: grade a class's submissions in isolated processes, fairly (independent grading) and fast."""
