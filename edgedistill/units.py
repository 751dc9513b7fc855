"""Human-readable figures: bytes, MACs, milliseconds, clock rates."""

from __future__ import annotations


def fmt_bytes(n: int) -> str:
    """Bytes in B, KiB or MiB (binary units); negative values keep their sign.

    Example:
        >>> fmt_bytes(53936), fmt_bytes(512), fmt_bytes(3 * 1024 * 1024), fmt_bytes(3500000)
        ('52.7 KiB', '512 B', '3 MiB', '3.34 MiB')
    """
    sign, n = ("-" if n < 0 else ""), abs(n)
    if n < 1024:
        return f"{sign}{n} B"
    for power, unit, digits in ((3, "GiB", 2), (2, "MiB", 2), (1, "KiB", 1)):
        if n >= 1024**power:
            value = n / 1024**power
            # Whole sizes (a 640 KiB SRAM, a 2 MiB flash) read best without decimals.
            shown = f"{value:.0f}" if value.is_integer() else f"{value:.{digits}f}"
            return f"{sign}{shown} {unit}"


def fmt_macs(n: int) -> str:
    """Multiply-accumulates in MAC, kMAC, MMAC or GMAC, three significant digits.

    Example:
        >>> fmt_macs(2656768), fmt_macs(320000), fmt_macs(768), fmt_macs(0)
        ('2.66 MMAC', '320 kMAC', '768 MAC', '0')
    """
    if n == 0:
        return "0"
    for scale, unit in ((1e9, "GMAC"), (1e6, "MMAC"), (1e3, "kMAC")):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} MAC"


def fmt_ms(ms: float) -> str:
    """Milliseconds: three significant digits, two below 1 ms, and microseconds below
    0.001 ms (where two digits of milliseconds would turn to exponent notation).

    Example:
        >>> fmt_ms(181.93), fmt_ms(2.345), fmt_ms(0.00417), fmt_ms(1234.5), fmt_ms(0.000048)
        ('182 ms', '2.35 ms', '0.0042 ms', '1234 ms', '0.048 µs')
    """
    if ms >= 100:
        return f"{ms:.0f} ms"
    if 0 < ms < 0.001:
        return f"{1000 * ms:.2g} µs"
    return f"{ms:.3g} ms" if ms >= 1 else f"{ms:.2g} ms"


def fmt_hz(hz: int) -> str:
    """A clock rate in MHz, or GHz from 1 GHz up.

    Example:
        >>> fmt_hz(120_000_000), fmt_hz(1_500_000_000)
        ('120 MHz', '1.5 GHz')
    """
    if hz >= 1_000_000_000:
        return f"{hz / 1e9:g} GHz"
    return f"{hz / 1e6:g} MHz"
