"""NumPy kernels of the primitive operators that NumPy lacks, one small
function each, named by the ``kernel`` field of their rule records.  They are
numerically safe (a sigmoid that never overflows, log-sum-exp with the
maximum subtracted, slogdet), and generated code includes their source, so
the evaluator and the generated module compute the same thing.

``EXACT`` holds the oracle's kernels (mpmath, 50 digits) for primitives that
mpmath lacks under the same name.
"""

import numpy as np


def sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(np.asarray(x) >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def relu(x):
    return np.maximum(x, 0.0)


def step(x):
    return np.greater(x, 0.0).astype(float)


def softplus(x):
    return np.logaddexp(0.0, x)


def colsums(x):
    return np.sum(x, axis=0, keepdims=True)


def rowsums(x):
    return np.sum(x, axis=1, keepdims=True)


def norm2(x):
    return float(np.sqrt(np.sum(np.square(x))))


def norm1(x):
    return float(np.sum(np.abs(x)))


def maxentry(x):
    return float(np.max(x))


def ismax(x):
    out = np.zeros(np.shape(x))
    flat = np.ravel(x, order="F")
    out.flat[np.ravel_multi_index(np.unravel_index(int(np.argmax(flat)), np.shape(x), order="F"), np.shape(x))] = 1.0
    return out


def logdet(x):
    return float(np.linalg.slogdet(np.atleast_2d(x))[1])


def adj(x):
    return np.linalg.det(x) * np.linalg.inv(x)


def diag(v):
    return np.diagflat(v)


def diagvec(x):
    return np.diagonal(x).reshape(-1, 1).copy()


def vec(x):
    return np.reshape(x, (-1, 1), order="F")


def unvec(v, r, c):
    return np.reshape(v, (r, c), order="F")


def kronfold(h, b, p, q):
    r, s = np.shape(b)
    return np.einsum("irjs,rs->ij", np.reshape(h, (p, r, q, s)), b)


def kronfold2(h, a, r, s):
    p, q = np.shape(a)
    return np.einsum("irjs,ij->rs", np.reshape(h, (p, r, q, s)), a)


def softmax(z):
    e = np.exp(z - np.max(z, axis=0, keepdims=True))
    return e / np.sum(e, axis=0, keepdims=True)


def softmax_rows(z):
    e = np.exp(z - np.max(z, axis=1, keepdims=True))
    return e / np.sum(e, axis=1, keepdims=True)


def logsumexp(z):
    top = np.max(z, axis=0, keepdims=True)
    return top + np.log(np.sum(np.exp(z - top), axis=0, keepdims=True))


def log_softmax(z):
    return z - logsumexp(z)


# -- the oracle's kernels (mpmath) --------------------------------------------------------------

def _exact():
    import mpmath as mp

    def each(f, *values):
        """f entry by entry over mpmath matrices and scalars, a scalar broadcast."""
        shape = next(((v.rows, v.cols) for v in values if isinstance(v, mp.matrix)), None)
        if shape is None:
            return f(*values)
        out = mp.matrix(*shape)
        for i in range(shape[0]):
            for j in range(shape[1]):
                out[i, j] = f(*(v[i, j] if isinstance(v, mp.matrix) else v for v in values))
        return out

    def entries(x):
        """Column-major entries of a matrix (or the one value of a scalar)."""
        if not isinstance(x, mp.matrix):
            return [x]
        return [x[i, j] for j in range(x.cols) for i in range(x.rows)]

    def maxentry(x):
        return max(entries(x))

    def ismax(x):
        flat = entries(x)
        k = flat.index(max(flat))
        out = mp.matrix(x.rows, x.cols)
        out[k % x.rows, k // x.rows] = 1
        return out

    def vec(x):
        return mp.matrix(entries(x))

    def unvec(v, r, c):
        flat = entries(v)
        out = mp.matrix(r, c)
        for k, value in enumerate(flat):
            out[k % r, k // r] = value
        return out

    def kron(a, b):
        a = a if isinstance(a, mp.matrix) else mp.matrix([[a]])
        b = b if isinstance(b, mp.matrix) else mp.matrix([[b]])
        out = mp.matrix(a.rows * b.rows, a.cols * b.cols)
        for i in range(a.rows):
            for j in range(a.cols):
                for k in range(b.rows):
                    for m in range(b.cols):
                        out[i * b.rows + k, j * b.cols + m] = a[i, j] * b[k, m]
        return out

    def kronfold(h, b, p, q):
        b = b if isinstance(b, mp.matrix) else mp.matrix([[b]])
        out = mp.matrix(p, q)
        for i in range(p):
            for j in range(q):
                out[i, j] = mp.fsum(h[i * b.rows + k, j * b.cols + m] * b[k, m]
                                    for k in range(b.rows) for m in range(b.cols))
        return out

    def kronfold2(h, a, r, s):
        a = a if isinstance(a, mp.matrix) else mp.matrix([[a]])
        out = mp.matrix(r, s)
        for k in range(r):
            for m in range(s):
                out[k, m] = mp.fsum(h[i * r + k, j * s + m] * a[i, j] for i in range(a.rows) for j in range(a.cols))
        return out

    def commutation(r, c):
        out = mp.zeros(r * c, r * c)
        for i in range(r):
            for j in range(c):
                out[i * c + j, j * r + i] = 1
        return out

    return {
        "commutation": commutation,
        "step": lambda x: each(lambda v: mp.mpf(1) if v > 0 else mp.mpf(0), x),
        "sign": lambda x: each(mp.sign, x),
        "max": lambda a, b: each(lambda u, v: u if u >= v else v, a, b),
        "maxentry": maxentry, "ismax": ismax, "vec": vec, "unvec": unvec, "kron": kron,
        "kronfold": kronfold, "kronfold2": kronfold2, "each": each,
    }


_EXACT_CACHE: dict = {}


def exact_kernels() -> dict:
    if not _EXACT_CACHE:
        _EXACT_CACHE.update(_exact())
    return _EXACT_CACHE


def commutation(r, c):
    """K with K @ vec(M) = vec(M.T) for an r×c matrix M (vec stacks columns)."""
    K = np.zeros((r * c, r * c))
    i, j = np.meshgrid(np.arange(r), np.arange(c), indexing="ij")
    K[(i * c + j).ravel(), (j * r + i).ravel()] = 1.0
    return K
