"""Analysis of parsed tables: work/, steps/, roofline/ and timing/ compute the numbers; reports/ presents them."""
