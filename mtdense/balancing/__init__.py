"""Loss weighting and gradient combination for multi-task training.

One file per method, each registered in ``mtdense.registry.BALANCERS``; the interface and
the trainer's calling sequence are documented in ``mtdense.balancing.base``. Each method
keeps the weight scale of its paper / official code. Balancers weight *task* losses only:
couplings keep their configured weight and are added outside the combination (base.py).

==============  ===============  ==========================================================
name            kind             combined update (weights)
==============  ===============  ==========================================================
fixed           loss weighting   sum_t w_t L_t, default w_t = 1 (plain sum)
uncertainty     loss weighting   sum_t exp(-s_t) L_t (+ s_t), exp(-s_t) starts at 1
dwa             loss weighting   weights sum to T, 1 each in the first two epochs
gradnorm        loss weighting   T·softmax(theta): positive, sum to T, start at 1
rlw             loss weighting   softmax of a normal draw: weights sum to 1
famo            loss weighting   weights sum to 1 (~1/L_t at initialisation); same-batch update
pcgrad          gradient         sum of the projected task gradients
cagrad          gradient         official scaling: the plain sum when c = 0
imtl            gradient         IMTL-G; coefficients sum to 1
aligned_mtl     gradient         sum of the aligned gradients (each of norm sqrt(lambda_min))
==============  ===============  ==========================================================
"""
