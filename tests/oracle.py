"""Dense reference implementations of DiffRes's formulas (test oracle only).

Builds the full overlap matrix W[b, i, j] = |[c_{i-1}, c_i) ∩ [j, j+1)|, [B, T, T'], exactly
as docs/METHOD.md section 3 defines it, and the aggregations from it.  O(B * T * T') on purpose.
"""

from __future__ import annotations

import math

import torch


def dense_weights(importance: torch.Tensor, out_len: int) -> torch.Tensor:
    s = importance.to(torch.float64)
    c_end = torch.cumsum(s, dim=1)
    c_end = c_end * (out_len / c_end[:, -1:])
    c_start = torch.cat([torch.zeros_like(c_end[:, :1]), c_end[:, :-1]], dim=1)
    j = torch.arange(out_len, dtype=torch.float64)
    lo = torch.maximum(c_start.unsqueeze(-1), j)
    hi = torch.minimum(c_end.unsqueeze(-1), j + 1)
    return (hi - lo).clamp(min=0.0)


def dense_warp(values: torch.Tensor, importance: torch.Tensor, out_len: int) -> torch.Tensor:
    w = dense_weights(importance, out_len)
    return torch.einsum("btk,btc->bkc", w, values.to(torch.float64))


def dense_warp_max(values: torch.Tensor, importance: torch.Tensor, out_len: int) -> torch.Tensor:
    w = dense_weights(importance, out_len)  # [B, T, T']
    prod = w.unsqueeze(-1) * values.to(torch.float64).unsqueeze(2)  # [B, T, T', C]
    prod = torch.where(w.unsqueeze(-1) > 0, prod, torch.full_like(prod, -math.inf))
    out = prod.amax(dim=1)
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


def dense_position_encoding(n_frames: int, n_channels: int) -> torch.Tensor:
    p = torch.zeros(n_frames, n_channels, dtype=torch.float64)
    for t in range(n_frames):
        for c in range(n_channels):
            k = c - (c % 2)
            angle = t / (10000.0 ** (k / n_channels))
            p[t, c] = math.sin(angle) if c % 2 == 0 else math.cos(angle)
    return p


def dense_diffres(log_mel: torch.Tensor, importance: torch.Tensor, out_len: int):
    """(avg, max, encoding) of docs/METHOD.md section 4 from the dense matrix."""
    batch, n_frames, n_mels = log_mel.shape
    power = torch.exp(log_mel.to(torch.float64))
    avg = torch.log(dense_warp(power, importance, out_len) + 1e-12)
    mx = torch.log(dense_warp_max(power, importance, out_len) * (n_frames / out_len) + 1e-12)
    code = dense_position_encoding(n_frames, n_mels).expand(batch, -1, -1)
    return avg, mx, dense_warp(code, importance, out_len)
