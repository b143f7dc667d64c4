print("decode bench")
