Š

web17
web18el9