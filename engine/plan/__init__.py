"""The compiled plan's types: the catalog as arrays, conditions, price lists, line and cart rule tables."""
