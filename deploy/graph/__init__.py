"""NIR graphs: a trained model as a graph (from_model), THE reader of graphs (read), the deployable
plan of populations and stages (plan), the float reference in torch (executor), and nir 1.0.8's
Conv2d fix (compat). read, plan and compat are numpy-only and run in both environments."""
