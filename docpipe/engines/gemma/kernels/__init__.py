"""GPU pieces of the Gemma engine: decode loop, attention, fused modules, MoE, vision tower, memory planner."""
