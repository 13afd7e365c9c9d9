namespace MoraEngine;

/// <summary>
/// A small, fast, seedable random generator (xoshiro128** seeded through splitmix64), so that the same seed gives
/// the same numbers on every machine and .NET version (System.Random makes no such promise).
/// </summary>
public sealed class Rng
{
    private uint _s0, _s1, _s2, _s3;
    private float? _spare;

    public Rng(ulong seed)
    {
        var x = seed;
        ulong Next()
        {
            x += 0x9E3779B97F4A7C15UL;
            var z = x;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }
        var a = Next();
        var b = Next();
        _s0 = (uint)a; _s1 = (uint)(a >> 32); _s2 = (uint)b; _s3 = (uint)(b >> 32);
        if ((_s0 | _s1 | _s2 | _s3) == 0) _s0 = 1;
    }

    /// <summary>Next 32 random bits.</summary>
    public uint NextUInt()
    {
        var result = BitRotl(_s1 * 5, 7) * 9;
        var t = _s1 << 9;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = BitRotl(_s3, 11);
        return result;
    }

    private static uint BitRotl(uint x, int k) => (x << k) | (x >> (32 - k));

    /// <summary>Uniform in [0, 1).</summary>
    public float NextFloat() => (NextUInt() >> 8) * (1f / (1 << 24));

    /// <summary>Uniform in [0, 1) with double resolution.</summary>
    public double NextDouble() => (((ulong)NextUInt() << 21) ^ NextUInt()) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n));
        return (int)(((ulong)NextUInt() * (ulong)n) >> 32);
    }

    /// <summary>Standard normal (Box–Muller).</summary>
    public float NextNormal()
    {
        if (_spare is { } s)
        {
            _spare = null;
            return s;
        }
        double u1;
        do u1 = NextDouble(); while (u1 <= 1e-300);
        var u2 = NextDouble();
        var r = Math.Sqrt(-2.0 * Math.Log(u1));
        _spare = (float)(r * Math.Sin(2 * Math.PI * u2));
        return (float)(r * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>The generator state, for checkpoints.</summary>
    public uint[] GetState() => [_s0, _s1, _s2, _s3];

    /// <summary>Restores a state from <see cref="GetState"/>.</summary>
    public void SetState(uint[] state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Length != 4) throw new ArgumentException("Rng state must have 4 words.", nameof(state));
        if ((state[0] | state[1] | state[2] | state[3]) == 0) throw new ArgumentException("Rng state must not be all zero (the generator would only yield zeros).", nameof(state));
        (_s0, _s1, _s2, _s3) = (state[0], state[1], state[2], state[3]);
        _spare = null;
    }
}
