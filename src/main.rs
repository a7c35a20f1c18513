//! `webclip`: zero-shot image classification, embeddings, tokenization and weight conversion
//! from the command line, over the same library code the browser runs.
//!
//! Errors are one line on stderr and a non-zero exit; JSON output (`--json`) is exactly one
//! JSON document on stdout.

#[cfg(target_family = "wasm")]
fn main() {}

#[cfg(not(target_family = "wasm"))]
fn main() {
    cli::main()
}

#[cfg(not(target_family = "wasm"))]
mod cli {
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;

    use clap::{Args, Parser, Subcommand};
    use serde_json::json;
    use webclip::tokenizer::{ClipTokenizer, Padding};
    use webclip::weights::{FloatType, convert};
    use webclip::zeroshot::DEFAULT_TEMPLATE;
    use webclip::{BackendKind, Clip, ComputeDevice, Error, Precision};

    #[derive(Parser)]
    #[command(name = "webclip", version, about = "OpenAI CLIP on burn: zero-shot image classification and embeddings")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Classify images against labels (zero-shot).
        Classify(ClassifyArgs),
        /// Print L2-normalized image or text embeddings.
        Embed(EmbedArgs),
        /// Print the 77-long token ids and attention mask of texts.
        Tokenize(TokenizeArgs),
        /// Rewrite a model.safetensors or pytorch_model.bin as safetensors of a chosen float type.
        Convert(ConvertArgs),
        /// Time each stage (decode, preprocess, vision, text, scoring): medians of several runs.
        Bench(BenchArgs),
    }

    #[derive(Args)]
    struct ModelArgs {
        /// Hugging Face CLIP directory: config.json, model.safetensors or pytorch_model.bin [, tokenizer.json, preprocessor_config.json].
        #[arg(long, value_name = "DIR")]
        model: PathBuf,
        /// The weights file in DIR, when it holds several (such as model.q8.safetensors next to
        /// model.safetensors). Default: model.safetensors, else pytorch_model.bin, else model.q8.safetensors.
        #[arg(long, value_name = "FILE")]
        weights: Option<String>,
        /// f16: compute in half precision on a GPU with shader-f16 (--backend wgpu); f32 is
        /// transformers' own.
        #[arg(long, default_value = "f32", value_name = "f32|f16")]
        precision: String,
        /// Where to run: cpu (burn flex) or wgpu (GPU through Vulkan/Metal/DX12).
        #[arg(long, default_value = "cpu", value_name = "cpu|wgpu")]
        backend: String,
        /// Turn images upright as their EXIF orientation says, as viewers show them (transformers
        /// does not: without this flag the numbers match it).
        #[arg(long)]
        exif_orientation: bool,
    }

    #[derive(Args)]
    struct ClassifyArgs {
        #[command(flatten)]
        model: ModelArgs,
        /// A label (repeatable).
        #[arg(long = "label", value_name = "L")]
        labels: Vec<String>,
        /// A file with one label per line.
        #[arg(long = "labels", value_name = "FILE")]
        labels_file: Option<PathBuf>,
        /// Prompt template with {} for the label (repeatable: templates are ensembled).
        #[arg(long = "template", value_name = "T")]
        templates: Vec<String>,
        /// Show only the K most probable labels.
        #[arg(long, value_name = "K")]
        top_k: Option<usize>,
        /// Print one JSON array instead of text.
        #[arg(long)]
        json: bool,
        /// Images to classify.
        #[arg(value_name = "IMAGE", required = true)]
        images: Vec<PathBuf>,
    }

    #[derive(Args)]
    struct EmbedArgs {
        #[command(flatten)]
        model: ModelArgs,
        /// An image to embed (repeatable).
        #[arg(long = "image", value_name = "PATH")]
        images: Vec<PathBuf>,
        /// A text to embed (repeatable).
        #[arg(long = "text", value_name = "T")]
        texts: Vec<String>,
        #[arg(long)]
        json: bool,
    }

    #[derive(Args)]
    struct TokenizeArgs {
        /// Use this model directory's tokenizer.json (default: the built-in CLIP tokenizer).
        #[arg(long, value_name = "DIR")]
        model: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        #[arg(value_name = "TEXT", required = true)]
        texts: Vec<String>,
    }

    #[derive(Args)]
    struct BenchArgs {
        #[command(flatten)]
        model: ModelArgs,
        /// Images per vision pass (copies of IMAGE).
        #[arg(long, default_value_t = 1, value_name = "N")]
        batch: usize,
        /// Timed runs, after one untimed warm-up.
        #[arg(long, default_value_t = 7, value_name = "R")]
        runs: usize,
        /// A prompt for the text tower, used verbatim (repeatable; default: 8 everyday prompts).
        #[arg(long = "prompt", value_name = "P")]
        prompts: Vec<String>,
        #[arg(long)]
        json: bool,
        /// The image to decode, preprocess and embed.
        #[arg(value_name = "IMAGE")]
        image: PathBuf,
    }

    #[derive(Args)]
    struct ConvertArgs {
        /// Target type: a float type, or q8 (8-bit Linear weights and embeddings, a quarter of f32's size).
        #[arg(long, value_name = "f16|bf16|f32|q8")]
        dtype: String,
        /// model.safetensors, or a PyTorch pytorch_model.bin.
        #[arg(value_name = "IN")]
        input: PathBuf,
        #[arg(value_name = "OUT.safetensors")]
        output: PathBuf,
    }

    pub fn main() {
        // A bug must still end in one line, not a backtrace.
        std::panic::set_hook(Box::new(|info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            eprintln!("webclip: internal error: {}", msg.lines().next().unwrap_or(""));
        }));
        let code = match Cli::try_parse() {
            Ok(cli) => match run(cli) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("webclip: error: {}", one_line(&e.to_string()));
                    ExitCode::FAILURE
                }
            },
            Err(e) if !e.use_stderr() => {
                // --help / --version
                print!("{e}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                // clap's message, without its usage block, folded onto one line.
                let text = e.to_string();
                let message = text.split("\n\n").next().unwrap_or("invalid arguments").trim_start_matches("error: ");
                eprintln!("webclip: error: {} (see webclip --help)", one_line(message));
                ExitCode::from(2)
            }
        };
        std::process::exit(match code {
            c if c == ExitCode::SUCCESS => 0,
            c if c == ExitCode::from(2) => 2,
            _ => 1,
        });
    }

    fn one_line(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    fn run(cli: Cli) -> Result<(), Error> {
        match cli.command {
            Command::Classify(a) => classify(a),
            Command::Embed(a) => embed(a),
            Command::Tokenize(a) => tokenize(a),
            Command::Bench(a) => bench(a),
            Command::Convert(a) => {
                let to: FloatType = a.dtype.parse()?;
                let bytes = std::fs::read(&a.input).map_err(|e| Error::io(&a.input, e))?;
                let out = convert(&bytes, to)?;
                std::fs::write(&a.output, out).map_err(|e| Error::io(&a.output, e))
            }
        }
    }

    fn load(args: &ModelArgs) -> Result<Clip, Error> {
        load_on(args, &device(args)?)
    }

    /// The device `--backend` and `--precision` ask for.
    fn device(args: &ModelArgs) -> Result<ComputeDevice, Error> {
        let kind: BackendKind = args.backend.parse()?;
        let precision: Precision = args.precision.parse()?;
        let mut device = ComputeDevice::new(kind)?;
        if precision == Precision::F16 {
            device.use_f16()?;
        }
        Ok(device)
    }

    fn load_on(args: &ModelArgs, device: &ComputeDevice) -> Result<Clip, Error> {
        // A model too large for the GPU says so first (a missing or bad config, when loading).
        let config = std::fs::read_to_string(args.model.join("config.json")).ok();
        if let Some(config) = config.and_then(|c| webclip::ClipConfig::from_json(&c).ok()) {
            device.check_fits(&config)?;
        }
        match &args.weights {
            Some(name) => Clip::load_dir_with(&args.model, name, &device.device),
            None => Clip::load_dir(&args.model, &device.device),
        }
    }

    fn decode_image(path: &Path, upright: bool) -> Result<webclip::preprocess::Rgb8, Error> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let decoded =
            if upright { webclip::preprocess::decode_upright(&bytes) } else { webclip::preprocess::decode(&bytes) };
        decoded.map_err(|e| Error::Input(format!("{}: {e}", path.display())))
    }

    fn classify(a: ClassifyArgs) -> Result<(), Error> {
        let mut labels = a.labels.clone();
        if let Some(file) = &a.labels_file {
            let text = std::fs::read_to_string(file).map_err(|e| Error::io(file, e))?;
            labels.extend(text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from));
        }
        if labels.iter().all(|l| l.trim().is_empty()) {
            return Err(Error::Input("no labels: pass --label L (repeatable) or --labels FILE".into()));
        }
        if a.top_k == Some(0) {
            return Err(Error::Input("--top-k must be at least 1".into()));
        }
        let templates = if a.templates.is_empty() { vec![DEFAULT_TEMPLATE.to_string()] } else { a.templates.clone() };
        // Decode every image before loading the model, so a bad file fails fast.
        let decoded =
            a.images.iter().map(|p| decode_image(p, a.model.exif_orientation)).collect::<Result<Vec<_>, _>>()?;
        let clip = load(&a.model)?;
        let pixels: Vec<_> = decoded.iter().map(|img| clip.prepare_rgb(img)).collect();
        let label_set = clip.label_set(&labels, &templates)?;
        let results = pollster::block_on(clip.classify(&pixels, &label_set))?;
        let k = a.top_k.unwrap_or(usize::MAX);
        if a.json {
            let out: Vec<_> = a
                .images
                .iter()
                .zip(&results)
                .map(|(path, preds)| {
                    let preds: Vec<_> = preds
                        .iter()
                        .take(k)
                        .map(|p| json!({"label": p.label, "probability": p.probability, "logit": p.logit}))
                        .collect();
                    json!({"image": path.display().to_string(), "predictions": preds})
                })
                .collect();
            println!("{}", serde_json::Value::Array(out));
        } else {
            for (path, preds) in a.images.iter().zip(&results) {
                println!("{}", path.display());
                for p in preds.iter().take(k) {
                    println!("  {:>7.3}%  {}", p.probability * 100.0, p.label);
                }
            }
        }
        Ok(())
    }

    fn embed(a: EmbedArgs) -> Result<(), Error> {
        if a.images.is_empty() && a.texts.is_empty() {
            return Err(Error::Input("nothing to embed: pass --image PATH and/or --text T".into()));
        }
        let decoded =
            a.images.iter().map(|p| decode_image(p, a.model.exif_orientation)).collect::<Result<Vec<_>, _>>()?;
        let clip = load(&a.model)?;
        let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
        if !a.images.is_empty() {
            let pixels: Vec<_> = decoded.iter().map(|img| clip.prepare_rgb(img)).collect();
            let embeds = pollster::block_on(Clip::rows(clip.image_embeddings(&pixels)?))?;
            rows.extend(a.images.iter().map(|p| p.display().to_string()).zip(embeds));
        }
        if !a.texts.is_empty() {
            let embeds = pollster::block_on(Clip::rows(clip.text_embeddings(&a.texts)?))?;
            rows.extend(a.texts.iter().cloned().zip(embeds));
        }
        if a.json {
            let out: Vec<_> = rows.iter().map(|(input, e)| json!({"input": input, "embedding": e})).collect();
            println!("{}", serde_json::Value::Array(out));
        } else {
            for (input, e) in &rows {
                let head: Vec<String> = e.iter().take(6).map(|v| format!("{v:+.5}")).collect();
                println!("{input}\t[{}] {} …", e.len(), head.join(" "));
            }
        }
        Ok(())
    }

    fn tokenize(a: TokenizeArgs) -> Result<(), Error> {
        let tokenizer = match &a.model {
            Some(dir) => {
                let path = dir.join("tokenizer.json");
                if path.exists() {
                    let json = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    ClipTokenizer::from_json(&json, 77)?
                } else {
                    ClipTokenizer::builtin(77)
                }
            }
            None => ClipTokenizer::builtin(77),
        };
        let enc = tokenizer.encode(&a.texts, Padding::MaxLength)?;
        let n = enc.tokens.seq_len;
        if a.json {
            let out: Vec<_> = a
                .texts
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    json!({"text": t, "input_ids": enc.tokens.row(i), "attention_mask": &enc.attention_mask[i * n..(i + 1) * n]})
                })
                .collect();
            println!("{}", serde_json::Value::Array(out));
        } else {
            for i in 0..a.texts.len() {
                let ids: Vec<String> = enc.tokens.row(i).iter().map(u32::to_string).collect();
                println!("{}", ids.join(" "));
            }
        }
        Ok(())
    }

    fn bench(a: BenchArgs) -> Result<(), Error> {
        if a.batch == 0 || a.runs == 0 {
            return Err(Error::Input("--batch and --runs must be at least 1".into()));
        }
        let image = std::fs::read(&a.image).map_err(|e| Error::io(&a.image, e))?;
        webclip::preprocess::decode(&image).map_err(|e| Error::Input(format!("{}: {e}", a.image.display())))?;
        let prompts = if a.prompts.is_empty() {
            ["cat", "dog", "bird", "car", "bicycle", "cup of coffee", "mountain lake", "rocket"]
                .map(|l| DEFAULT_TEMPLATE.replace("{}", l))
                .to_vec()
        } else {
            a.prompts.clone()
        };
        let device = device(&a.model)?;
        let t = std::time::Instant::now();
        let clip = load_on(&a.model, &device)?;
        let load_ms = t.elapsed().as_secs_f64() * 1000.0;
        let report = webclip::bench::bench(&clip, &image, &prompts, a.batch, a.runs)?;
        let (median, min) = (report.median(), report.min());
        let names = webclip::bench::STAGES;
        if a.json {
            let stages: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_string(), json!({"median_ms": median[i], "min_ms": min[i]})))
                .collect();
            let out = json!({
                "model": a.model.model.display().to_string(),
                "backend": device.describe(),
                "batch": a.batch,
                "prompts": prompts.len(),
                "runs": a.runs,
                "load_ms": load_ms,
                "stages": stages,
            });
            println!("{out}");
        } else {
            let v = &clip.config.vision_config;
            println!(
                "webclip bench: {} (ViT {}×{}, patch {}, {} px) on {}; batch {}, {} prompts; median of {} runs after a warm-up",
                a.model.model.display(),
                v.num_hidden_layers,
                v.hidden_size,
                v.patch_size,
                v.image_size,
                device.describe(),
                a.batch,
                prompts.len(),
                a.runs
            );
            println!("  {:<12} {:>10.1} ms (once)", "load", load_ms);
            for (i, n) in names.iter().enumerate() {
                println!("  {n:<12} {:>10.2} ms   (best {:.2})", median[i], min[i]);
            }
            let image_ms = median[0] + median[1] + median[2];
            println!(
                "  {:<12} {:>10.2} ms per image (decode + preprocess + vision)",
                "image",
                image_ms / a.batch as f64
            );
        }
        Ok(())
    }
}
