"""io: input data (images, preprocessing, labels) and atomic output files, used by every stage."""
