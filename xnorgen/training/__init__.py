"""Training (the paper's Algorithm 1) in numpy: data loads datasets, ops holds the layers'
forward and backward passes with binarized weights and the straight-through sign gradient,
trainer runs the loop (SGD/Adam) and writes the .npz a net.yaml names.
"""
