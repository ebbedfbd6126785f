//! Exact rendered prompts for the Qwen 2.5, Gemma 3 and Llama 3.x template
//! families, and BOS/special-token handling on the real tokenizers.

mod common;

use common::{gemma, qwen};
use pocketlm::{ChatTemplate, Error, Message};

fn exchange(system: bool) -> Vec<Message> {
    let mut m = Vec::new();
    if system {
        m.push(Message::system("You are helpful."));
    }
    m.extend([Message::user("Hi"), Message::assistant("Hello!"), Message::user("How are you?")]);
    m
}

#[test]
fn qwen25_template_from_the_model_file() {
    let prompt = qwen().render_prompt(&exchange(true), true).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
         <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    // Without a system message the template inserts Qwen's default one.
    let prompt = qwen().render_prompt(&[Message::user("Hi")], false).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nHi<|im_end|>\n"
    );
    assert_eq!(qwen().info().prompt_format, "jinja");
}

#[test]
fn qwen_prompt_tokens_have_no_bos_and_parse_special_tokens() {
    let prompt = qwen().render_prompt(&[Message::user("Hi")], true).unwrap();
    let tokens = qwen().tokenize(&prompt);
    let im_start = 151644;
    let im_end = 151645;
    assert_eq!(tokens[0], im_start, "Qwen adds no BOS; the prompt starts with <|im_start|>");
    assert_eq!(tokens.iter().filter(|&&t| t == im_end).count(), 2, "<|im_end|> is one special token");
}

#[test]
fn gemma3_template_renders_exactly() {
    let t = ChatTemplate::new(include_str!("templates/gemma-3-it.jinja"), "<bos>", "<eos>").unwrap();
    assert_eq!(
        t.render(&exchange(true), true).unwrap(),
        "<bos><start_of_turn>user\nYou are helpful.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n\
         <start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n"
    );
    assert_eq!(t.render(&[Message::user("Hi")], false).unwrap(), "<bos><start_of_turn>user\nHi<end_of_turn>\n");
}

#[test]
fn gemma3_prompt_gets_exactly_one_bos() {
    let t = ChatTemplate::new(include_str!("templates/gemma-3-it.jinja"), "<bos>", "<eos>").unwrap();
    let tokens = gemma().tokenize(&t.render(&[Message::user("Hi")], true).unwrap());
    let bos = 2;
    assert_eq!(tokens[0], bos);
    assert_eq!(tokens.iter().filter(|&&t| t == bos).count(), 1, "no double BOS: {tokens:?}");
    // A plain prompt (no template) gets the model's BOS added.
    let plain = gemma().tokenize("The sky is");
    assert_eq!(plain[0], bos);
    assert_eq!(plain.iter().filter(|&&t| t == bos).count(), 1);
}

#[test]
fn gemma3_template_rejects_non_alternating_roles() {
    let t = ChatTemplate::new(include_str!("templates/gemma-3-it.jinja"), "<bos>", "<eos>").unwrap();
    let err = t.render(&[Message::user("a"), Message::user("b")], true).unwrap_err();
    assert!(matches!(&err, Error::Template(m) if m.contains("alternate")), "{err}");
}

#[test]
fn llama32_template_renders_exactly_with_a_pinned_date() {
    let t = ChatTemplate::with_date(include_str!("templates/llama-3.2-instruct.jinja"), "<|begin_of_text|>", "<|eot_id|>", 2024, 7, 26)
        .unwrap();
    assert_eq!(
        t.render(&exchange(true), true).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
         You are helpful.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n\
         Hi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n\
         Hello!<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n\
         How are you?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
    );
    // No system message: the header still carries the dates, with an empty system text.
    assert_eq!(
        t.render(&[Message::user("Hi")], false).unwrap(),
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n\
         Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n\
         <|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
    );
}
