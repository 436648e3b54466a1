"""What banet-lite 0.1 called things, and what they are called now.

0.1 called the boundary side "edge" (labels, branch, heads, loss), the word PEE keeps for its
feature edges. A 0.1 checkpoint still loads and resumes as itself: its weight names, TrainConfig
fields and history columns are renamed on reading (model/weights.py: upgrade_names; old -> new, as
substrings). A 0.1 command line gets an error that names the new flag (__main__.py). No torch
here: the command line reads these tables before it imports anything heavy.
"""

RENAMED_WEIGHTS = {".edge_branch.": ".boundary_branch.", ".edge_head.": ".boundary_head.",
                   ".attend_edge.": ".attend_boundary."}
RENAMED_SETTINGS = {"edge_weight": "boundary_weight", "edge_pos_weight": "boundary_pos_weight"}
RENAMED_COLUMNS = {"side_edge": "side_boundary"}  # train_side_edge -> train_side_boundary
