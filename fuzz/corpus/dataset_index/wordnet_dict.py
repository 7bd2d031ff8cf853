{0: 'c0_circle', 1: 'c1_square', 2: 'c2_triangle', 3: 'c3_cross', 4: 'c4_ring', 5: 'c5_star', 6: 'c6_diamond', 7: 'c7_hexagon', 8: 'c8_crescent', 9: 'c9_ell'}
