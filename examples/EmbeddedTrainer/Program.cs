// The smallest embedding of MoraEngine: build a model, wrap it with MoRA, train it on a few lines of text,
// merge the update into the weights and save. Run: dotnet run -c Release --project examples/EmbeddedTrainer
using System.Text;
using MoraEngine.Adapters;
using MoraEngine.IO;
using MoraEngine.Nn;
using MoraEngine.Optim;
using MoraEngine.Training;

var outDir = args.Length > 0 ? args[0] : Path.Combine("runs", "embedded");

// 1. A small byte-level GPT. A real application would load pretrained weights: ModelIO.LoadWeights(path, model).
var config = new ModelConfig { VocabSize = 256, DModel = 128, Layers = 2, Heads = 4, Context = 64 };
var model = new TransformerModel(config, seed: 1);

// 2. MoRA on q, k, v, o, up, down (r = 8 gives r̂ ≈ √(8·(in + out)) per layer); the rest of the model is frozen.
var adapted = AdaptedModel.Wrap(model, new AdapterConfig { Method = AdapterMethod.Mora, Rank = 8, MoraType = MoraType.Sharing });
Console.WriteLine($"{adapted.TrainableParameterCount():N0} of {adapted.TotalParameterCount():N0} parameters train.");

// 3. Train on a few lines of text: random 64-byte windows, next-byte prediction.
var text = Encoding.UTF8.GetBytes("""
    MoraEngine trains small transformers inside your own .NET process.
    MoRA learns a square matrix between a compression and a decompression of the layer's input,
    so the same parameter budget as LoRA buys a much higher rank update.
    """);
var data = new TextBatchSource(text, seed: 2);
var optimizer = new AdamW(adapted.TrainableParameters(), lr: 3e-3f, weightDecay: 0f);
var trainer = new Trainer(model, optimizer, new WarmupCosineLr(3e-3f, warmup: 20, total: 300), data, new TrainerOptions { BatchSize = 8 });
for (var step = 1; step <= 300; step++)
{
    var loss = trainer.TrainStep();
    if (step % 50 == 0) Console.WriteLine($"step {step}: loss {loss:F3}");
}

// 4. Save the adapter (PEFT layout), then fold it into the weights and save a plain model: same outputs, no adapter.
var check = new TextBatchSource(text, seed: 3);
var before = trainer.Evaluate(check, 1);
adapted.Save(Path.Combine(outDir, "adapter"));
var merged = adapted.MergeAndUnload();
ModelIO.SaveWeights(Path.Combine(outDir, "model.safetensors"), merged);
Console.WriteLine($"Held-out windows: loss {before:F4} adapted, {trainer.Evaluate(new TextBatchSource(text, seed: 3), 1):F4} merged. Saved to {outDir}.");
