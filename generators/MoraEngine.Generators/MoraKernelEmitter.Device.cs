using System.Collections.Generic;
using System.Linq;

namespace MoraEngine.Generators
{
    internal static partial class MoraKernelEmitter
    {
        private sealed partial class KernelWriter
        {
            /// <summary>Sums of at most this many terms are written out; longer ones become loops with literal bounds.</summary>
            private const int Unroll = 16;

            /// <summary>
            /// The ILGPU versions of the four operations (<c>IMoraDeviceKernels</c>): one thread per output element,
            /// every index computed with literal divisors and the type's case chosen here, summing in the generic
            /// kernels' order.
            /// </summary>
            private void WriteDevice()
            {
                Ln();
                Ln("// ---------------------------------------------------------------- ILGPU kernels");
                Ln();
                Ln($"/// <summary>Compressed row width the device kernels work on: {(_rope ? $"the {AC} active chunks of {R}" : "r̂")}.</summary>");
                Ln($"private const int DeviceWidth = {AW};");
                if (_rope) Ln($"private const int TableHalf = {G * H}; // the sin table's offset in the device tables");
                Ln();
                Ln("IMoraDeviceKernels? IMoraKernels.Device => this;");
                Ln($"int IMoraDeviceKernels.Chunks => {AC};");
                Ln("MoraDeviceKernel IMoraDeviceKernels.Compress => CompressDevice;");
                Ln("MoraDeviceKernel IMoraDeviceKernels.CompressBackward => CompressBackwardDevice;");
                Ln("MoraDeviceKernel IMoraDeviceKernels.DecompressAdd => DecompressAddDevice;");
                Ln("MoraDeviceKernel IMoraDeviceKernels.DecompressBackward => DecompressBackwardDevice;");

                DeviceKernel("CompressDevice", "xc = f_comp(x); one thread per (row, slot) of xc.", "x", "xc", "DeviceWidth", "q", "In", () =>
                {
                    switch (_s.Type)
                    {
                        case 0:
                            Ln("xc[idx] = x[at + q];");
                            break;
                        case 1 or 4:
                        {
                            var terms = Enumerable.Range(0, F).Select(c => $"x[at + {Off(c * R, "q")}]").ToList();
                            SumInto("v", terms, F, c => $"x[at + c * {R} + q]");
                            if (TL > 0)
                            {
                                Ln($"// The last chunk: x[{F * R} + q] for q < {TL}, then the wrap padding x[q − {TL}].");
                                Ln($"v += q < {TL} ? x[at + {F * R} + q] : x[at + q - {TL}];");
                            }
                            Ln("xc[idx] = v;");
                            break;
                        }
                        case 2 or 3:
                            GroupSumDevice("x", "xc", I, "q");
                            break;
                        default:
                            Ln($"int g = q / {R};");
                            Ln($"int j = q - g * {R};");
                            Ln("float v;");
                            RotateDevice("x", "at", "g", "j", wrap: TL > 0 && AC > F, inverse: false, assign: "v =");
                            Ln("xc[idx] = v;");
                            break;
                    }
                });

                DeviceKernel("CompressBackwardDevice", "gx (+)= f_compᵀ(gxc); one thread per (row, input); flag = accumulate.", "gxc", "gx", "In", "k", "DeviceWidth", () =>
                {
                    Ln("float v = flag != 0 ? gx[idx] : 0f;");
                    switch (_s.Type)
                    {
                        case 0:
                            Ln($"if (k < {R}) v += gxc[at + k];");
                            break;
                        case 1 or 4:
                            Ln($"v += gxc[at + k % {R}];");
                            if (TL > 0) Ln($"if (k < {P}) v += gxc[at + {TL} + k]; // x[k] is also the wrap padding of the last chunk");
                            break;
                        case 2 or 3:
                            Ln($"v += gxc[at + {GroupOf("k", I)}];");
                            break;
                        default:
                            Ln("// The transposed rotation (by −angle) of every chunk position that reads x[k].");
                            Ln($"int g = k / {R};");
                            Begin($"if (g < {AC})");
                            RotateDevice("gxc", "at", "g", $"k - g * {R}", wrap: false, inverse: true, assign: "v +=");
                            End();
                            if (TL > 0 && AC > F)
                            {
                                Begin($"if (k < {P})");
                                RotateDevice("gxc", "at", $"{F}", $"{TL} + k", wrap: false, inverse: true, assign: "v +=");
                                End();
                            }
                            break;
                    }
                    Ln("gx[idx] = v;");
                });

                DeviceKernel("DecompressAddDevice", "y += f_decomp(ŷ); one thread per (row, output).", "yhat", "y", "Out", "o", "DeviceWidth", () =>
                {
                    switch (_s.Type)
                    {
                        case 0:
                            Ln($"if (o < {R}) y[idx] += yhat[at + o];");
                            break;
                        case 2 or 4:
                            Ln($"y[idx] += yhat[at + {GroupOf("o", O)}];");
                            break;
                        default:
                            Ln(AW >= O ? "y[idx] += yhat[at + o];" : $"y[idx] += yhat[at + o % {AW}];");
                            break;
                    }
                });

                DeviceKernel("DecompressBackwardDevice", "gŷ = f_decompᵀ(gy); one thread per (row, slot) of gŷ.", "gy", "gyhat", "DeviceWidth", "q", "Out", () =>
                {
                    switch (_s.Type)
                    {
                        case 0:
                            Ln("gyhat[idx] = gy[at + q];");
                            break;
                        case 2 or 4:
                            GroupSumDevice("gy", "gyhat", O, "q");
                            break;
                        default:
                        {
                            // Transpose of tiling: the whole tiles in order, then the partial one; slots past out get zero.
                            var full = O / AW;
                            var rem = O % AW;
                            if (full == 0)
                                Ln($"float v = q < {O} ? gy[at + q] : 0f;");
                            else
                            {
                                var terms = Enumerable.Range(0, full).Select(t => $"gy[at + {Off(t * AW, "q")}]").ToList();
                                SumInto("v", terms, full, t => $"gy[at + t * {AW} + q]", "t");
                                if (rem > 0) Ln($"if (q < {rem}) v += gy[at + {full * AW} + q];");
                            }
                            Ln("gyhat[idx] = v;");
                            break;
                        }
                    }
                });
            }

            /// <summary>
            /// A kernel method: splits the thread index into (row, column) of the destination with literal divisors and
            /// sets <c>at</c> to the start of the source row.
            /// </summary>
            private void DeviceKernel(string name, string doc, string src, string dst, string dstWidth, string col, string srcWidth, System.Action body)
            {
                Ln();
                Ln($"/// <summary>Device {doc}</summary>");
                Begin($"private static void {name}(Index1D index, ArrayView<float> {src}, ArrayView<float> {dst}, ArrayView<float> tables, int flag)");
                Ln("int idx = index;");
                Ln($"int row = idx / {dstWidth};");
                Ln($"int {col} = idx - row * {dstWidth};");
                Ln($"long at = (long)row * {srcWidth};");
                body();
                End();
            }

            /// <summary>float v = Σ terms (written out), or a loop with literal bounds over the same terms.</summary>
            private void SumInto(string v, List<string> terms, int count, System.Func<string, string> loopTerm, string var = "c")
            {
                if (count <= Unroll)
                {
                    Ln($"float {v} = {string.Join(" + ", terms)};");
                    return;
                }
                Ln($"float {v} = {terms[0]};");
                Ln($"for (int {var} = 1; {var} < {count}; {var}++) {v} += {loopTerm(var)};");
            }

            private static string Off(int constant, string variable) => constant == 0 ? variable : $"{constant} + {variable}";

            /// <summary>Interleave group sums: dst[slot] = Σ src over the group's consecutive items (closed form).</summary>
            private void GroupSumDevice(string src, string dst, int n, string slot)
            {
                var nr = n / R;
                var big = n - R * nr;
                if (big == 0)
                {
                    Ln($"int start = {slot} * {nr};");
                    Ln($"float v = 0f;");
                    Ln($"for (int k = 0; k < {nr}; k++) v += {src}[at + start + k];");
                }
                else
                {
                    Ln($"// The first {big} groups hold {nr + 1} items, the rest {nr}.");
                    Ln($"int start = {slot} < {big} ? {slot} * {nr + 1} : {slot} * {nr} + {big};");
                    Ln($"int end = start + ({slot} < {big} ? {nr + 1} : {nr});");
                    Ln($"float v = 0f;");
                    Ln($"for (int k = start; k < end; k++) v += {src}[at + k];");
                }
                Ln($"{dst}[idx] = v;");
            }

            /// <summary>The interleave group that item <paramref name="k"/> of <paramref name="n"/> belongs to.</summary>
            private string GroupOf(string k, int n)
            {
                var nr = n / R;
                var big = n - R * nr;
                if (big == 0) return $"{k} / {nr}";
                var split = big * (nr + 1);
                return $"({k} < {split} ? {k} / {nr + 1} : {big} + ({k} - {split}) / {nr})";
            }

            /// <summary>
            /// Element j of RoPE chunk g rotated by ±angle: (c·cos − o·sin, c·cos + o·sin) for the two halves, with c the
            /// element and o its partner j ± r̂/2; wrap: positions past the input read the wrap padding.
            /// </summary>
            private void RotateDevice(string src, string at, string g, string j, bool wrap, bool inverse, string assign)
            {
                Ln($"int jj = {j};");
                Ln($"int h = jj < {H} ? jj : jj - {H};");
                Ln($"float cv = tables[{g} * {H} + h];");
                Ln($"float sv = tables[TableHalf + {g} * {H} + h];");
                Ln($"int i0 = {g} * {R} + jj;");
                Ln($"int i1 = jj < {H} ? i0 + {H} : i0 - {H};");
                if (wrap)
                {
                    Ln($"if (i0 >= {I}) i0 -= {I};");
                    Ln($"if (i1 >= {I}) i1 -= {I};");
                }
                // Forward: first half c·cos − o·sin, second c·cos + o·sin; the inverse negates sin.
                var (first, second) = inverse ? ("+", "-") : ("-", "+");
                var value = $"jj < {H} ? {src}[{at} + i0] * cv {first} {src}[{at} + i1] * sv : {src}[{at} + i0] * cv {second} {src}[{at} + i1] * sv";
                Ln($"{assign} {value};");
            }
        }
    }
}
