"""The fitted surrogate: its two networks, the output scales, and scoring through numpy.

``spend_net`` maps [received_campaign, features] to the outcome on the network's scale (``OutcomeLink``);
``interval_net`` maps features to the log-widths of the 90% uplift interval below and above the mean. With
several campaign arms (``arm_names``), spend_net's first inputs are one indicator per arm (control: all 0) and
interval_net gives the two log-widths of each arm's uplift, arm after arm.
"""
from __future__ import annotations

import numpy as np

PREDICT_CHUNK = 512  # rows per inference chunk: intermediates stay in cache (~6% faster than 1024), and OpenBLAS
# stays single-threaded (above ~2k rows it starts threads, which on 2 busy cores made scoring 10x slower)
PREDICTION_NAMES = ("spend_if_treated", "spend_if_control", "uplift", "uplift_lower", "uplift_upper")


def prediction_names(arm_names=()) -> tuple[str, ...]:
    """``predict_encoded``'s outputs: PREDICTION_NAMES for one campaign arm; with several, the control arm's
    spend, then per arm its spend, uplift and uplift interval (``spend_if_<arm>``, ``uplift_<arm>``,
    ``uplift_<arm>_lower``, ``uplift_<arm>_upper``)."""
    if not arm_names:
        return PREDICTION_NAMES
    return ("spend_if_control", *(f"{name}{a}{end}" for a in arm_names for name, end in
                                  (("spend_if_", ""), ("uplift_", ""), ("uplift_", "_lower"), ("uplift_", "_upper"))))
SPEND_FLOOR = 1e-9  # relative to spend_scale; expected spend is positive but may round to 0 in a CSV
PROB_FLOOR = 1e-7  # binary outcomes: probabilities are clipped to [floor, 1 - floor] before the logit


def _torch():
    import torch  # training only: scoring never imports torch

    return torch


class OutcomeLink:
    """The network's output scale for each outcome type, and the way back to the expected outcome.

    spend: log(E / scale) (positive, skewed); binary: logit(P) (a probability); gaussian:
    (E - loc) / scale (any real). ``scale`` and ``loc`` are fixed at training and saved in the checkpoint.
    """

    def __init__(self, outcome_type: str = "spend", scale: float = 1.0, loc: float = 0.0):
        self.outcome_type, self.scale, self.loc = outcome_type, scale, loc

    @classmethod
    def fit(cls, outcome_type: str, expected: np.ndarray) -> "OutcomeLink":
        if outcome_type == "spend":
            return cls(outcome_type, float(np.mean(expected)) or 1.0)
        if outcome_type == "binary":
            return cls(outcome_type)
        return cls(outcome_type, float(np.std(expected)) or 1.0, float(np.mean(expected)))

    def to_net(self, expected: np.ndarray) -> np.ndarray:
        if self.outcome_type == "spend":
            return np.log(np.maximum(expected / self.scale, SPEND_FLOOR))
        if self.outcome_type == "binary":
            p = np.clip(expected, PROB_FLOOR, 1.0 - PROB_FLOOR)
            return np.log(p / (1.0 - p))
        return (expected - self.loc) / self.scale

    def from_net(self, z):
        """Works on numpy arrays (scoring) and torch tensors (the training loss)."""
        lib = np if isinstance(z, (np.ndarray, float)) else _torch()
        if self.outcome_type == "spend":
            return lib.exp(z) * self.scale
        if self.outcome_type == "binary":
            return 1.0 / (1.0 + lib.exp(-z))
        return z * self.scale + self.loc


class Surrogate:
    """The fitted pair of networks plus the scales needed to turn outputs back into spend.

    Scoring runs the networks' weights through numpy rather than torch: a 1-user call costs ~30 us
    instead of ~200 us of per-op overhead, and large batches run at the same speed. A surrogate loaded for
    scoring (``from_layers``) holds the weights only; ``spend_net`` and ``interval_net`` are then rebuilt as
    torch modules (importing torch) the first time they are asked for.
    """

    def __init__(self, spend_net, interval_net, spend_scale: float, uplift_scale: float,
                 outcome_type: str = "spend", outcome_loc: float = 0.0, arm_names=()):
        self._nets = {"spend_net": spend_net.eval(), "interval_net": interval_net.eval()}
        self._setup(_layers(spend_net), _layers(interval_net), spend_scale, uplift_scale, outcome_type, outcome_loc,
                    arm_names)

    @classmethod
    def from_layers(cls, spend_layers, interval_layers, spend_scale: float, uplift_scale: float,
                    outcome_type: str = "spend", outcome_loc: float = 0.0, arm_names=()) -> "Surrogate":
        """A surrogate from each network's [first weight, first bias, last weight, last bias] (float32 arrays of
        torch's ``Linear`` shapes), without torch; ``arm_names`` the campaign arms' suffixes when there are
        several (empty for one)."""
        self = cls.__new__(cls)
        self._nets = {}
        self._setup(list(spend_layers), list(interval_layers), spend_scale, uplift_scale, outcome_type, outcome_loc,
                    arm_names)
        return self

    def _setup(self, spend_layers, interval_layers, spend_scale, uplift_scale, outcome_type, outcome_loc,
               arm_names=()) -> None:
        self.arm_names = list(arm_names)
        self.n_arms = max(1, len(self.arm_names))
        if len(interval_layers[3]) != 2 * self.n_arms:
            raise ValueError(f"Surrogate: interval_net has {len(interval_layers[3])} outputs, not 2 per arm of "
                             f"{self.n_arms}")
        self._layers = {"spend_net": spend_layers, "interval_net": interval_layers}
        self.spend_scale = spend_scale
        self.uplift_scale = uplift_scale
        self.link = OutcomeLink(outcome_type, spend_scale, outcome_loc)
        w1, b1, w2, b2 = (np.asarray(a, dtype=np.float64) for a in spend_layers)
        v1, c1, v2, c2 = (np.asarray(a, dtype=np.float64) for a in interval_layers)
        self.hidden = len(b1)
        k = self.n_arms
        self._feature_weight, self._b1 = np.ascontiguousarray(w1[:, k:].T), b1
        self._arm_weight = w1[:, 0].copy() if k == 1 else np.ascontiguousarray(w1[:, :k].T)  # (arms, hidden)
        self._v1, self._c1 = np.ascontiguousarray(v1.T), c1
        self._w2, self._b2 = w2[0].copy(), float(b2[0])
        self._v2, self._c2 = np.ascontiguousarray(v2.T), c2

    def _net(self, name: str):
        if name not in self._nets:
            import torch

            from .model import SimpleNN

            w1, b1, w2, b2 = self._layers[name]
            net = SimpleNN(w1.shape[1], w1.shape[0], w2.shape[0])
            state = dict(zip(["net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"],
                             (torch.from_numpy(np.array(a, dtype=np.float32)) for a in (w1, b1, w2, b2))))
            net.load_state_dict(state)
            self._nets[name] = net.eval()
        return self._nets[name]

    @property
    def spend_net(self):
        """The torch module of the outcome network (rebuilt from the weights when loaded for scoring)."""
        return self._net("spend_net")

    @property
    def interval_net(self):
        """The torch module of the interval network (rebuilt from the weights when loaded for scoring)."""
        return self._net("interval_net")

    def predict_encoded(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Encoded users -> spend under each arm, uplift and its 90% interval (float64 arrays).

        Same math as ``spend_net(with_arm(x, arm))``, but the first layer's product with the features is
        shared by both arms (and computed with interval_net's in one product), and users go through in
        cache-sized chunks. Each matrix product is computed in float64 and rounded to float32: BLAS sums in a
        different order for 1 row than for 1,000, and that rounding hides the difference, so a user's scores
        do not depend on how users are batched (HTTP and batch files agree digit for digit).
        """
        x_all = np.asarray(x, dtype=np.float64)
        if self.arm_names:
            return self._predict_arms(x_all)
        n, h = len(x_all), self.hidden
        out = {name: np.empty(n) for name in PREDICTION_NAMES}
        rows = min(n, PREDICT_CHUNK)
        buffers = _Buffers(rows, h, self._b1, self._c1, self._arm_weight)
        for start in range(0, n, PREDICT_CHUNK):
            xt = x_all[start:start + PREDICT_CHUNK]
            k = len(xt)
            relu = buffers.relu[:, :k]  # the ReLU outputs of the treated arm, the control arm and the interval
            spend32 = buffers.first_layer(xt, self._feature_weight, buffers.spend_bias)
            np.copyto(relu[0], spend32)
            np.add(relu[0], buffers.arm[:k], out=relu[0])
            np.maximum(relu[0], 0.0, out=relu[0])
            np.maximum(spend32, 0, out=spend32)  # max(round(p), 0) is exactly a float32
            np.copyto(relu[1], spend32)
            interval32 = buffers.first_layer(xt, self._v1, buffers.interval_bias)
            np.maximum(interval32, 0, out=interval32)
            np.copyto(relu[2], interval32)
            arms = self.link.from_net(_rounded(relu[:2].reshape(2 * k, h) @ self._w2) + self._b2)
            treated, control = arms[:k], arms[k:]
            widths = np.exp(_rounded(relu[2] @ self._v2) + self._c2) * self.uplift_scale
            chunk = slice(start, start + k)
            out["spend_if_treated"][chunk] = treated
            out["spend_if_control"][chunk] = control
            uplift = np.subtract(treated, control, out=out["uplift"][chunk])
            np.subtract(uplift, widths[:, 0], out=out["uplift_lower"][chunk])
            np.add(uplift, widths[:, 1], out=out["uplift_upper"][chunk])
        return out


    def _predict_arms(self, x_all: np.ndarray) -> dict[str, np.ndarray]:
        """``predict_encoded`` with several campaign arms (``prediction_names``): the first layer's product with
        the features is shared by every arm, and each product is rounded to float32 as in the one-arm path."""
        n, k = len(x_all), self.n_arms
        out = {name: np.empty(n) for name in prediction_names(self.arm_names)}
        for start in range(0, n, PREDICT_CHUNK):
            xt = x_all[start:start + PREDICT_CHUNK]
            chunk = slice(start, start + len(xt))
            pre = _rounded(xt @ self._feature_weight + self._b1)
            hidden = np.concatenate([np.maximum(pre, 0), *(np.maximum(pre + w, 0) for w in self._arm_weight)])
            spend = self.link.from_net(_rounded(hidden @ self._w2) + self._b2).reshape(k + 1, len(xt))
            widths = np.exp(_rounded(np.maximum(_rounded(xt @ self._v1 + self._c1), 0) @ self._v2) + self._c2)
            widths = widths * self.uplift_scale
            out["spend_if_control"][chunk] = spend[0]
            for a, name in enumerate(self.arm_names):
                uplift = spend[a + 1] - spend[0]
                out[f"spend_if_{name}"][chunk] = spend[a + 1]
                out[f"uplift_{name}"][chunk] = uplift
                out[f"uplift_{name}_lower"][chunk] = uplift - widths[:, 2 * a]
                out[f"uplift_{name}_upper"][chunk] = uplift + widths[:, 2 * a + 1]
        return out


class _Buffers:
    """Arrays ``predict_encoded`` reuses from chunk to chunk, and its biases repeated on every row: numpy's
    ufuncs run ~2x faster on whole contiguous arrays of one dtype than when broadcasting a row or casting."""

    def __init__(self, rows: int, hidden: int, spend_bias, interval_bias, arm_weight):
        self.relu = np.empty((3, rows, hidden))
        self.pre, self.pre32 = np.empty((rows, hidden)), np.empty((rows, hidden), dtype=np.float32)
        self.spend_bias, self.interval_bias, self.arm = (np.tile(v, (rows, 1)) for v in (spend_bias, interval_bias,
                                                                                          arm_weight))

    def first_layer(self, xt: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
        """``xt @ weight + bias`` in float64, rounded to float32 (a view of ``pre32``, valid until the next call)."""
        k = len(xt)
        pre, pre32 = self.pre[:k], self.pre32[:k]
        np.matmul(xt, weight, out=pre)
        np.add(pre, bias[:k], out=pre)
        np.copyto(pre32, pre, casting="same_kind")
        return pre32


def _layers(net) -> list[np.ndarray]:
    """[first weight, first bias, last weight, last bias] of a torch ``SimpleNN`` as float32 arrays (copies)."""
    first, last = net.net[0], net.net[2]
    return [t.detach().numpy().copy() for t in (first.weight, first.bias, last.weight, last.bias)]


def _rounded(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32).astype(np.float64)
