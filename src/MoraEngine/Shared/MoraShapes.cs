// One source file compiled into both the engine (src/MoraEngine) and the kernel generator
// (generators/MoraEngine.Generators, netstandard2.0): the shape math that decides which MoRA kernels a model needs
// must be the same on both sides. Keep it to plain C# that both targets compile.
using System;
using System.Collections.Generic;

namespace MoraEngine.Shared
{
    /// <summary>MoRA's square size r̂, the MLP width and the adapted layers' (in, out) of one transformer block.</summary>
    internal static class MoraShapes
    {
        /// <summary>Type ids, as the official code numbers them (0 truncation, 1 sharing, 2, 3, 4, 6 RoPE).</summary>
        public static readonly int[] KnownTypes = { 0, 1, 2, 3, 4, 6 };

        /// <summary>Adapter target names: the engine's layout, then Hugging Face's (GPT-2, then LLaMA).</summary>
        public static readonly string[] KnownTargets =
        {
            "q", "k", "v", "o", "up", "down", "gate",
            "c_attn", "c_proj", "c_fc", "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj",
        };

        /// <summary>r̂ for a LoRA rank r: ⌊√((in + out)·r) + ½⌋, rounded down to even for RoPE (type 6); r itself for truncation (type 0).</summary>
        public static int RankHat(int inFeatures, int outFeatures, int loraRank, int type)
        {
            if (type == 0) return loraRank;
            var r = (int)Math.Floor(Math.Sqrt((double)(inFeatures + (long)outFeatures) * loraRank) + 0.5);
            return type == 6 ? r / 2 * 2 : r;
        }

        /// <summary>The MLP width: the configured one, else 4·d (GPT-2) or LLaMA's ⌈(8/3·d)/32⌉·32.</summary>
        public static int FfHidden(bool llama, int dModel, int ffHidden) =>
            ffHidden > 0 ? ffHidden : !llama ? 4 * dModel : (int)Math.Ceiling(8.0 * dModel / 3 / 32) * 32;

        /// <summary>
        /// The linear layers of one block that <paramref name="targets"/> hit, in model order, as (leaf name, in the
        /// MLP, in, out). <paramref name="kvWidth"/> is the key/value width (d for plain multi-head attention); the
        /// Hugging Face GPT-2 layout has one fused c_attn (d → d + 2·kv) and two c_proj layers (attention, MLP).
        /// </summary>
        public static List<(string Leaf, bool Mlp, int In, int Out)> BlockShapes(bool llama, bool huggingFace, int dModel, int ff, int kvWidth, ICollection<string> targets)
        {
            var list = new List<(string, bool, int, int)>();
            void Add(string leaf, bool mlp, int i, int o)
            {
                if (targets.Contains(leaf)) list.Add((leaf, mlp, i, o));
            }
            if (!huggingFace)
            {
                Add("q", false, dModel, dModel);
                Add("k", false, dModel, kvWidth);
                Add("v", false, dModel, kvWidth);
                Add("o", false, dModel, dModel);
                if (llama) Add("gate", true, dModel, ff);
                Add("up", true, dModel, ff);
                Add("down", true, ff, dModel);
            }
            else if (!llama)
            {
                Add("c_attn", false, dModel, dModel + 2 * kvWidth);
                Add("c_proj", false, dModel, dModel);
                Add("c_fc", true, dModel, ff);
                Add("c_proj", true, ff, dModel);
            }
            else
            {
                Add("q_proj", false, dModel, dModel);
                Add("k_proj", false, dModel, kvWidth);
                Add("v_proj", false, dModel, kvWidth);
                Add("o_proj", false, dModel, dModel);
                Add("gate_proj", true, dModel, ff);
                Add("up_proj", true, dModel, ff);
                Add("down_proj", true, ff, dModel);
            }
            return list;
        }
    }
}
