//! Model architectures that this build's llama.cpp can run, and which of them
//! can chat (generate text token by token from a prompt).

/// `general.architecture` values known to the vendored llama.cpp (from its
/// `src/llama-arch.cpp`, llama-cpp-sys-2 0.1.160). Vision projectors (`clip`)
/// are not language models and are left out.
const SUPPORTED: &[&str] = &[
    "llama",
    "llama4",
    "deci",
    "falcon",
    "grok",
    "gpt2",
    "gptj",
    "gptneox",
    "mpt",
    "baichuan",
    "starcoder",
    "refact",
    "bert",
    "modern-bert",
    "nomic-bert",
    "nomic-bert-moe",
    "neo-bert",
    "jina-bert-v2",
    "jina-bert-v3",
    "eurobert",
    "bloom",
    "stablelm",
    "qwen",
    "qwen2",
    "qwen2moe",
    "qwen2vl",
    "qwen3",
    "qwen3moe",
    "qwen3next",
    "qwen3vl",
    "qwen3vlmoe",
    "qwen35",
    "qwen35moe",
    "clef",
    "qwen4exp",
    "phi2",
    "phi3",
    "phimoe",
    "plamo",
    "plamo2",
    "plamo3",
    "codeshell",
    "orion",
    "internlm2",
    "minicpm",
    "minicpm3",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma3n",
    "gemma4",
    "gemma4-assistant",
    "gemma-embedding",
    "starcoder2",
    "mamba",
    "mamba2",
    "maple",
    "jamba",
    "falcon-h1",
    "xverse",
    "command-r",
    "cohere2",
    "cohere2moe",
    "dbrx",
    "olmo",
    "olmo2",
    "olmoe",
    "muse-glimmer",
    "openelm",
    "arctic",
    "deepseek",
    "deepseek2",
    "deepseek2-ocr",
    "deepseek32",
    "deepseek4",
    "chatglm",
    "glm4",
    "glm4moe",
    "glm-dsa",
    "bitnet",
    "t5",
    "t5encoder",
    "jais",
    "jais2",
    "nemotron",
    "nemotron_h",
    "nemotron_h_moe",
    "exaone",
    "exaone4",
    "exaone-moe",
    "rwkv6",
    "rwkv6qwen2",
    "rwkv7",
    "arwkv7",
    "granite",
    "granitemoe",
    "granitehybrid",
    "graniteswitch",
    "granite_swa",
    "chameleon",
    "wavtokenizer-dec",
    "plm",
    "bailingmoe",
    "bailingmoe2",
    "bailingmoe3",
    "dots1",
    "dots3note",
    "arcee",
    "afmoe",
    "laguna",
    "ernie4_5",
    "ernie4_5-moe",
    "hunyuan-moe",
    "hunyuan-dense",
    "hunyuan_vl",
    "hy_v3",
    "hy_v4",
    "smollm3",
    "gpt-oss",
    "lfm2",
    "lfm2moe",
    "dream",
    "smallthinker",
    "llada",
    "llada-moe",
    "seed_oss",
    "grovemoe",
    "apertus",
    "minimax-01",
    "hrm_text",
    "minimax-m2",
    "minimax-m3",
    "cogvlm",
    "rnd1",
    "pangu-embedded",
    "mistral3",
    "eagle3",
    "dflash",
    "mistral4",
    "paddleocr",
    "mimo2",
    "step35",
    "spark2_5",
    "llama-embed",
    "maincoder",
    "kimi-linear",
    "kimi-k3",
    "glm5-next",
    "talkie",
    "mellum",
    "nanbeige",
    "qwen3tts",
    "pockettts",
];

/// Whether llama.cpp can load a model of this architecture.
pub fn is_supported(architecture: &str) -> bool {
    SUPPORTED.contains(&architecture)
}

/// What a model of some architecture does, as far as chatting is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchKind {
    /// An autoregressive decoder: it can chat.
    Decoder,
    /// Encoder-only (BERT family, embedding models): vectors, no next token.
    Encoder,
    /// Encoder-decoder (T5): needs an encoder pass this engine does not run.
    EncoderDecoder,
    /// Text-to-speech or audio codec: its outputs are not text tokens.
    Audio,
    /// Diffusion language model: needs its own denoising loop, not sampling.
    Diffusion,
    /// A speculative-decoding draft head: runs only beside its target model.
    DraftHead,
}

impl ArchKind {
    /// Why an architecture of this kind cannot chat (`None` for decoders).
    pub fn why_not_chat(self) -> Option<&'static str> {
        match self {
            ArchKind::Decoder => None,
            ArchKind::Encoder => Some("it is an encoder-only (embedding) model"),
            ArchKind::EncoderDecoder => Some("it is an encoder-decoder model, which needs an encoder pass"),
            ArchKind::Audio => Some("it is a speech or audio-codec model"),
            ArchKind::Diffusion => Some("it is a diffusion language model, which needs its own decoding loop"),
            ArchKind::DraftHead => Some("it is a speculative-decoding draft head, which only runs beside its target model"),
        }
    }
}

/// The kind of a `general.architecture` value. Unknown names count as
/// decoders; [`is_supported`] decides whether they load at all.
pub fn kind(architecture: &str) -> ArchKind {
    match architecture {
        "bert" | "modern-bert" | "nomic-bert" | "nomic-bert-moe" | "neo-bert" | "jina-bert-v2" | "jina-bert-v3" | "eurobert"
        | "t5encoder" | "gemma-embedding" | "llama-embed" => ArchKind::Encoder,
        "t5" => ArchKind::EncoderDecoder,
        "wavtokenizer-dec" | "qwen3tts" | "pockettts" => ArchKind::Audio,
        "dream" | "llada" | "llada-moe" | "rnd1" => ArchKind::Diffusion,
        "eagle3" | "dflash" => ArchKind::DraftHead,
        _ => ArchKind::Decoder,
    }
}

/// Whether llama.cpp runs this architecture with no KV cache at all (its
/// `create_memory` list: BERT-family and other bidirectional encoders).
pub fn keeps_no_kv_cache(architecture: &str) -> bool {
    matches!(
        architecture,
        "bert"
            | "jina-bert-v2"
            | "jina-bert-v3"
            | "nomic-bert"
            | "nomic-bert-moe"
            | "neo-bert"
            | "eurobert"
            | "modern-bert"
            | "gemma-embedding"
            | "wavtokenizer-dec"
            | "dream"
            | "llada"
            | "llada-moe"
            | "rnd1"
            | "clef"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoders_chat_and_others_say_why_not() {
        for arch in ["llama", "qwen2", "qwen3", "gemma3", "phi3"] {
            assert!(is_supported(arch) && kind(arch).why_not_chat().is_none(), "{arch}");
        }
        for arch in ["bert", "nomic-bert", "t5encoder", "t5", "wavtokenizer-dec", "qwen3tts", "dream", "eagle3"] {
            assert!(is_supported(arch), "{arch} is in llama.cpp's list");
            assert!(kind(arch).why_not_chat().is_some(), "{arch} cannot chat");
        }
    }
}
