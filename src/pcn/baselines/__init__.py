"""Non-PC models that the papers compare PC against, one module each, trained on the
same data and budgets as the PC models they are set beside (thesis Tables 5.1, 5.2 and
Figs. 5.6, 5.7). Import the module you need: `from pcn.baselines import rbm`."""
