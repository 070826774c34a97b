"""Stages 1-2, the front end: a user's files -> a checked, shaped Network.

yaml_loader reads net.yaml (YAML 1.2 core schema, sizes bounded before anything is built);
description validates it into Layer dataclasses (contract section 1); userfiles opens a
stranger's files safely (regular files only, .npy headers checked before data is read);
weights attaches the .npz arrays to the layers; graph builds the networkx DAG and infers
every tensor's shape. Nothing here knows about targets or C.
"""
