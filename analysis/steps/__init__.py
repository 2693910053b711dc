"""Steps: where each step begins and ends without annotations, and the tokens and context each step computed."""
